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


@dataclass
class Transcript:
    utterances: list[Utterance]
    duration: float
    language: str
    model: str

    def to_dict(self) -> dict:
        return asdict(self)

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
        return cls(
            utterances=sorted(utterances, key=lambda u: u.start),
            duration=float(data.get("duration") or max((u.end for u in utterances), default=0.0)),
            language=data.get("language", ""),
            model=data.get("model", ""),
        )
