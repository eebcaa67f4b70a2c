"""Typed transcript records shared by every stage.

A transcript is a list of speaker turns ("utterances") ordered by start time,
each with word timestamps. Channels are transcribed apart and merged by time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OPERATOR = "operator"
CLIENT = "client"
UNKNOWN = "unknown"
SPEAKERS = (OPERATOR, CLIENT, UNKNOWN)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass
class Utterance:
    speaker: str
    start: float
    end: float
    text: str
    channel: int = 0
    words: list[Word] = field(default_factory=list)


# Why detected speech got no words (Unheard.reason).
NOTHING_RECOGNISED = "nothing recognised"  # decoded again on its own: Whisper gave no words
UNCLEAR = "unclear"  # decoded again: the text was dropped as unclear or a Whisper hallucination
NOT_RETRIED = "not decoded again"  # more unheard stretches in the channel than are decoded again


@dataclass(frozen=True)
class Unheard:
    """Detected speech that got no words: where a listener should listen, and why."""

    channel: int
    start: float
    end: float
    reason: str = ""  # NOTHING_RECOGNISED, UNCLEAR or NOT_RETRIED; "" in transcripts made before reasons


@dataclass
class Coverage:
    """How much of the speech found in the audio got words: ``share`` under 0.9
    means the transcript misses speech the listener can still hear."""

    speech_s: float  # seconds VAD or energy called speech
    heard_s: float  # of those, seconds near a recognised word
    unheard: list[Unheard] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.heard_s / self.speech_s if self.speech_s else 1.0

    @classmethod
    def from_dict(cls, data: dict) -> "Coverage":
        return cls(float(data["speech_s"]), float(data["heard_s"]), [Unheard(**x) for x in data.get("unheard", [])])


@dataclass
class Transcript:
    utterances: list[Utterance]
    duration: float
    language: str
    model: str
    coverage: Coverage | None = None  # None for transcripts that were not measured (chats, older JSON)
    speakers: dict | None = None  # how a mono call was split into two voices (speakers.SpeakerSplit), None if it was not

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.coverage is not None:
            d["coverage"]["share"] = round(self.coverage.share, 3)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Transcript":
        utterances = [
            Utterance(
                speaker=u["speaker"],
                start=float(u["start"]),
                end=float(u["end"]),
                text=u["text"],
                channel=int(u.get("channel", 0)),
                words=[Word(**w) for w in u.get("words", [])],
            )
            for u in data["utterances"]
        ]
        cov = data.get("coverage")
        return cls(
            utterances=sorted(utterances, key=lambda u: u.start),
            duration=float(data.get("duration") or max((u.end for u in utterances), default=0.0)),
            language=data.get("language", ""),
            model=data.get("model", ""),
            coverage=Coverage.from_dict(cov) if cov else None,
            speakers=data.get("speakers"),
        )
