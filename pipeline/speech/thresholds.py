"""Every threshold of the transcriber in one record, each with the reason for
its value. Measurements: docs/benchmarks.md ("Transcription", "Real speech",
"Lost speech"); tuning runs go on the dev splits of benchmarks/real_speech.py.
``regions``, ``windows``, ``segments`` and ``transcribe`` read ``THRESHOLDS``;
the window length and the VAD threshold can also be set per run
(``TranscribeOptions``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # -- finding speech (regions) --
    vad: float = 0.2  # Silero's 0.5 default dropped much quiet speech on split channels
    energy_margin_db: float = 15.0  # a frame this far above the channel's noise floor counts as speech...
    # echo and crosstalk from the other channel (regions.echo_masks; benchmarks/echo.py)
    echo_max_lag_s: float = 0.6  # the longest echo delay looked for (network echo: up to a few hundred ms)
    echo_floor_db: float = 6.0  # levels within this of a channel's noise floor do not count when finding the delay
    echo_present_db: float = 3.0  # echo is removed when, while the other side speaks, it lifts this channel this far over its floor
    echo_min_frames: int = 30  # the other channel must speak this many frames (1 s) for its echo to be measured
    echo_margin_db: float = 6.0  # a frame no louder than the predicted echo plus this is echo...
    echo_below_db: float = 6.0  # ...if it is also this much quieter than its source
    echo_min_frames_run: int = 9  # echo is a run of this many frames (0.3 s) at least: lone echo-like frames inside speech are not echo
    silent_dbfs: float = -60.0  # nothing below this level is speech by energy (digital silence, a near-silent line)
    vad_floor_dbfs: float = -65.0  # ...nor by Silero
    min_region_s: float = 0.12  # shorter blips are clicks, not words
    min_loud_region_s: float = 0.3  # a region (or a run, below) Silero does not vouch for must be this long...
    # ...counting its loud frames, runs of them parted by dips shorter than this as one: a short
    # reply dips between syllables, and Silero may not vouch for it at all (festival voices on
    # mono calls: "Ладно, жду." as 0.26 + 0.16 + 0.1 s, each too short, lost without a warning)
    region_join_s: float = 0.15
    # ...but between two pauses of digital silence (a VoIP line with silence suppression sends only
    # what the far end took for speech) this long will do: a «Да.» of 0.26 s was lost without a
    # warning (dev aligneval VoIP calls); 0.2 s everywhere took a noise at the end of a real
    # recording (vosk's test.wav) for speech
    min_burst_s: float = 0.2
    region_pad_s: float = 0.25  # context kept around each speech region (0.5: better on demo, worse on realspeech dev)
    merge_gap_s: float = 0.6  # regions closer than this are decoded as one piece
    onset_db: float = 10.0  # a turn's start snaps to where the level rises this far over the floor

    # -- packing speech into windows (windows) --
    window_s: float = 30.0  # Whisper's own input; 20 s was 1.4x faster and misheard more (dev dialogues 0.271 vs 0.249)
    pack_gap_s: float = 1.0  # silence between packed pieces (0.3 s: dev dialogues WER 0.27 vs 0.249)
    split_db: float = 12.0  # a region is split between windows only at a frame this close to the noise floor
    digital_silence_dbfs: float = -90.0  # pauses this quiet (exact zeros; line noise is -50 to -70 dBFS) are equally good cuts...
    # ...and the first that fills the window this far is taken. Dev voip dialogues and aligneval voip
    # calls pooled (WER / deletions / RTF): 0.4 0.283 / 0.044 / 0.070, 0.7 0.275 / 0.045 / 0.063,
    # 0.9 0.283 / 0.050 / 0.074 (fuller windows are decoded again more often)
    window_fill: float = 0.7

    # -- decoding (transcribe) --
    max_tokens: int = 224  # per window, as Whisper's own sample_len
    tokens_per_s: int = 8  # more tokens than this per second of window is a loop (speech gives 3-5)
    loop_repetition_penalty: float = 1.2  # the last, deterministic decoding of a window that loops...
    loop_no_repeat_ngram: int = 4  # ...may not repeat a 4-gram (instead of Whisper's sampling, which gave other text each run)

    # -- what a decoding is worth (segments) --
    loop_compression: float = 2.4  # gzip ratio over which a text is a loop (Whisper's own)
    silent_window_no_speech: float = 0.6  # a window this sure of silence...
    silent_window_logprob: float = -1.0  # ...and this unsure of its text is silence (Whisper's own rule)
    unsure_logprob: float = -1.0  # a window less sure than this is decoded again
    no_speech: float = 0.5  # a segment this sure of silence...
    no_speech_logprob: float = -0.8  # ...and this unsure of its text is "no speech"...
    speech_evidence: float = 0.5  # ...unless Silero's mean probability over it is this high
    # mean word probability of text kept against Whisper's doubt: espeak mumbles at ~0.3; a number
    # heard right is unsure (digits or words?), and 0.5 dropped price lists and phone numbers
    # the second pass had read (dev aligneval voip: WER 0.299 -> 0.292, deletions 0.063 -> 0.051)
    clear_words: float = 0.4
    min_logprob: float = -1.3  # a segment less sure than this is dropped
    min_word_prob: float = 0.25  # ...or whose words (3 or more) are heard this badly
    loop_words: int = 3  # a phrase of this many words said twice back to back is a loop; people repeat a word or two

    # -- turns and coverage (segments) --
    turn_pause_s: float = 0.8  # a pause this long between words starts a new utterance
    heard_reach_s: float = 1.0  # speech farther than this from every word is unheard; shorter stretches are pauses
    # ...and so is a run of speech with no word in it (regions.speech_runs): a short reply between
    # two turns of a mono call lay within reach of their words and was lost without a warning
    run_pause_s: float = 0.15  # runs are parted by pauses this long
    run_min_s: float = 0.3  # shorter runs are a breath or a click; a run counts where Silero reaches
    # speech_evidence in it or it is loud for min_loud_region_s (a reply Silero scored 0.00 was lost silently)
    # a word timed longer than this vouches for its first max_word_s only: Whisper timed one word
    # over 10.7 s, the first three turns of a dev VoIP call, and they were lost without a warning
    max_word_s: float = 2.0

    # -- the second pass over unheard speech (transcribe) --
    redo_max_per_channel: int = 8  # stretches decoded again per channel of a call (bounds the cost of a bad call)
    redo_max_s: float = 30.0  # ...each at most this long, Whisper's own window
    redo_pad_s: float = 0.2  # context around each

    # -- two voices on a mono call (speakers) --
    voice_window_s: float = 1.5  # a voice embedding's window: shorter ones embed the words more than the voice
    voice_hop_s: float = 0.5
    voice_min_speech: float = 0.3  # Silero's mean speech probability for a window to be embedded (0.5 left most windows out: dev mixes DER 0.180 vs 0.085)
    voice_min_windows: int = 6  # fewer windows of speech than this: too little to tell voices apart
    # each window's neighbours in the voice graph, as a share of the windows: it must stay
    # under the quieter voice's share (aepyx pairs, dev: 0.05 and 0.08 gave DER 0.096 and
    # 0.100, 0.12 and 0.2 let a speaker with 18% of the windows merge into the other: 0.155, 0.173)
    voice_neighbours: float = 0.05
    # ...and at least this many: with fewer, a short call's graph falls into pieces and the
    # split follows the pieces (dev DER the same from 2 to 8; a 17 s call lost its last turn at 2)
    voice_min_neighbours: int = 5
    # a normalised cut of the voice graph at or above this: one voice, left one speaker.
    # Dev: two voices 0.000-0.055 (real pairs, real calls, festival mixes), one voice
    # 0.084-0.563; set well above the two-voice side after the held-out two-woman call
    # (pyannote's sample) came out at 0.106 (docs/benchmarks.md)
    voice_one_ncut: float = 0.15
    # a stretch of speech between pauses (Silero under this for this long) of this length...
    voice_pause_prob: float = 0.2  # (0.5 cut more pauses: dev short turns 0.515, demo mixes 0.089)
    voice_pause_s: float = 0.15
    voice_stretch_min_s: float = 0.3  # (0.5: short turns 0.504, voip 0.122; 0.3: 0.489, 0.119; 0.2 no better)
    voice_stretch_max_s: float = 3.0  # (6 s: short turns 0.488, demo mixes 0.080)
    # ...goes whole to the voice whose mean it is nearer to by this cosine margin
    # (dev DER short turns / demo mixes: 0.03 0.495 / 0.083, 0.05 0.496 / 0.076, 0.08 0.517 / 0.076)
    voice_stretch_margin: float = 0.05


THRESHOLDS = Thresholds()
