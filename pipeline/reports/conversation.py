"""Conversation metrics from a transcript's timing alone: who talks how much,
silences, interruptions, and how fast the operator answers.

Works on anything with ``speaker``, ``start`` and ``end`` (``Utterance``,
``UtteranceRow``). For stereo calls the operator and the client are the two
channels, so overlapping speech of the two speakers is overlap between the
channels. Chats use the same records, one per message, ``start`` being the
message time in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import mean, median
from typing import Protocol, Sequence

from pipeline.speech.transcript import CLIENT, OPERATOR


class Timed(Protocol):
    speaker: str
    start: float
    end: float


# Overlaps shorter than this are back-channel ("uh-huh") or timestamp jitter,
# not someone cutting in (word timestamps are off by ~0.2 s at turn edges).
MIN_INTERRUPTION_S = 0.3


@dataclass(frozen=True)
class CallMetrics:
    kind: str  # audio | chat
    duration: float
    operator_talk: float | None = None  # seconds of operator speech
    client_talk: float | None = None
    talk_listen_ratio: float | None = None  # operator talk / client talk
    silence_share: float | None = None  # of the span from the first word to the last
    longest_silence: float | None = None
    interruptions_by_operator: int | None = None
    interruptions_by_client: int | None = None
    overlap_time: float | None = None
    response_latency_mean: float | None = None  # operator starts after the client stops
    response_latency_median: float | None = None
    responses: int = 0
    first_response_time: float | None = None  # chats
    avg_response_time: float | None = None  # chats

    def as_dict(self) -> dict:
        return asdict(self)


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _length(intervals: Sequence[tuple[float, float]]) -> float:
    return sum(e - s for s, e in intervals)


def _intersection(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0.0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def audio_metrics(utterances: Sequence[Timed], duration: float | None = None, min_overlap: float = MIN_INTERRUPTION_S) -> CallMetrics:
    """Talk time, silences, interruptions and response latency of one call."""
    utts = sorted((u for u in utterances if u.end > u.start), key=lambda u: (u.start, u.end))
    dur = duration if duration is not None else max((u.end for u in utts), default=0.0)
    op = _union([(u.start, u.end) for u in utts if u.speaker == OPERATOR])
    cl = _union([(u.start, u.end) for u in utts if u.speaker == CLIENT])
    speech = _union([(u.start, u.end) for u in utts])
    op_talk, cl_talk = _length(op), _length(cl)
    if not speech:
        return CallMetrics("audio", dur, 0.0, 0.0, None, None, None, 0, 0, 0.0)

    # Silence inside the conversation: the ring before the first word and the
    # hang-up after the last are not the operator's doing.
    gaps = [b[0] - a[1] for a, b in zip(speech, speech[1:])]
    span = speech[-1][1] - speech[0][0]
    silence = sum(gaps)

    interruptions = {OPERATOR: 0, CLIENT: 0}
    for u in utts:
        if u.speaker not in interruptions:
            continue
        for v in utts:
            if v.speaker in interruptions and v.speaker != u.speaker and v.start < u.start < v.end:
                if min(u.end, v.end) - u.start >= min_overlap:
                    interruptions[u.speaker] += 1
                    break

    # Latency: from the end of a client turn (consecutive client utterances)
    # to the next operator utterance; an operator who starts before the client
    # has finished is counted as an interruption, not as a negative latency.
    latencies = []
    turn_end: float | None = None
    for u in utts:
        if u.speaker == CLIENT:
            turn_end = u.end if turn_end is None else max(turn_end, u.end)
        elif u.speaker == OPERATOR:
            if turn_end is not None and u.start >= turn_end:
                latencies.append(u.start - turn_end)
            turn_end = None

    return CallMetrics(
        kind="audio",
        duration=dur,
        operator_talk=op_talk,
        client_talk=cl_talk,
        talk_listen_ratio=op_talk / cl_talk if cl_talk > 0 else None,
        silence_share=silence / span if span > 0 else None,
        longest_silence=max(gaps, default=0.0),
        interruptions_by_operator=interruptions[OPERATOR],
        interruptions_by_client=interruptions[CLIENT],
        overlap_time=_intersection(op, cl),
        response_latency_mean=mean(latencies) if latencies else None,
        response_latency_median=median(latencies) if latencies else None,
        responses=len(latencies),
    )


def chat_metrics(messages: Sequence[Timed]) -> CallMetrics:
    """First response time and average response time of one chat; a wait is
    measured from the client's first unanswered message, as the client feels it."""
    msgs = sorted(messages, key=lambda m: m.start)
    waits = []
    waiting_since: float | None = None
    for m in msgs:
        if m.speaker == CLIENT:
            if waiting_since is None:
                waiting_since = m.start
        elif m.speaker == OPERATOR and waiting_since is not None:
            waits.append(m.start - waiting_since)
            waiting_since = None
    dur = (msgs[-1].end - msgs[0].start) if msgs else 0.0
    return CallMetrics(
        kind="chat",
        duration=max(0.0, dur),
        first_response_time=waits[0] if waits else None,
        avg_response_time=mean(waits) if waits else None,
        responses=len(waits),
    )


def call_metrics(kind: str, utterances: Sequence[Timed], duration: float | None = None) -> CallMetrics:
    return chat_metrics(utterances) if kind == "chat" else audio_metrics(utterances, duration)
