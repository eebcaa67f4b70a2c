"""What an alignment says about one call: the record ``callreview analyze`` writes
and ``alignments.result`` stores (docs/output-format.md). Writers build it and
readers validate it, so no reader parses the JSON by string keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_serializer

from pipeline.vocabulary import StepStatus


class _Record(BaseModel):
    # Rows written by a newer version may carry fields this one does not know.
    model_config = ConfigDict(extra="ignore")


class StepResult(_Record):
    """One script step in one call: where the aligner found it, or that it did not."""

    id: str
    title: str = ""
    status: StepStatus
    utterances: list[int] = []
    start: float | None = None
    end: float | None = None
    confidence: float = 0.0  # found: that it was done here; missing: that it was not done
    quote: str = ""  # the best-matching sentence, for the listener's checklist
    quote_start: float | None = None  # that sentence's own time, to play just what was judged
    quote_end: float | None = None

    @field_serializer("start", "end", "quote_start", "quote_end")
    def _seconds(self, t: float | None) -> float | None:
        return None if t is None else round(t, 2)

    @field_serializer("confidence")
    def _share(self, p: float) -> float:
        return round(p, 3)

    @property
    def found(self) -> bool:
        return self.status == StepStatus.FOUND

    @property
    def sentence(self) -> tuple[str, float, float | None] | None:
        """The sentence the step was judged on and its own time (what the
        listener hears and the report clips); None in records from before
        sentences had times, whose readers fall back to the step's utterances."""
        return (self.quote, self.quote_start, self.quote_end) if self.quote and self.quote_start is not None else None


class OffScript(_Record):
    """Operator sentences that match no step: one or more in a row within one
    utterance (a step sentence between two makes two of these)."""

    utterance: int
    start: float
    end: float
    text: str
    confidence: float = 0.0  # that the sentence(s) match no step

    @field_serializer("start", "end")
    def _seconds(self, t: float) -> float:
        return round(t, 2)

    @field_serializer("confidence")
    def _share(self, p: float) -> float:
        return round(p, 3)


class ChecklistRef(_Record):
    id: str
    version: int
    sha256: str


class UtteranceText(_Record):
    """An utterance as the alignment saw it; ``i`` is its index in the transcript."""

    i: int
    speaker: str
    start: float
    end: float
    text: str


class UnheardSpeech(_Record):
    channel: int
    start: float
    end: float
    reason: str = ""  # speech.transcript: nothing recognised | unclear | not decoded again


class CoverageRecord(_Record):
    """The transcript's coverage: seconds of detected speech, of them heard (near a
    recognised word), their share, and the stretches that got no words."""

    speech_s: float
    heard_s: float
    share: float
    unheard: list[UnheardSpeech] = []


class AlignmentRecord(_Record):
    file: str = ""
    checklist: ChecklistRef
    scorer: str = ""
    duration: float = 0.0
    utterances: list[UtteranceText] = []
    steps: list[StepResult] = []
    off_script: list[OffScript] = []
    coverage: CoverageRecord | None = None  # None: a chat, or a transcript made before coverage was measured
    speakers: dict | None = None  # a mono call split by voice: how, which voice is the operator and how sure (docs/output-format.md)

    def step(self, step_id: str) -> StepResult | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def texts(self) -> dict[int, str]:
        """Utterance index -> text."""
        return {u.i: u.text for u in self.utterances}

    def adherence(self) -> float | None:
        """Share of script steps found in the call."""
        return sum(s.found for s in self.steps) / len(self.steps) if self.steps else None

    def to_json(self) -> dict:
        return self.model_dump(mode="json")
