"""Conversation metrics on a hand-built call whose numbers are worked out below."""

import pytest

from pipeline.reports.conversation import audio_metrics, call_metrics, chat_metrics
from pipeline.speech.transcript import Utterance


def U(speaker, start, end, channel=None):
    return Utterance(speaker=speaker, start=start, end=end, text="", channel=0 if speaker == "operator" else 1)


CALL = [
    U("operator", 1.0, 4.0),
    U("client", 4.5, 8.0),
    U("operator", 7.5, 10.0),  # cuts in 0.5 s before the client stops: an interruption
    U("client", 12.0, 15.0),
    U("client", 15.5, 17.0),  # same client turn
    U("operator", 18.0, 20.0),  # answers 1.0 s after the turn ends
    U("client", 19.9, 21.0),  # 0.1 s overlap: back-channel, not an interruption
    U("operator", 22.5, 25.0),  # answers after 1.5 s
]


def test_audio_metrics_by_hand():
    m = audio_metrics(CALL, duration=30.0)
    assert m.duration == 30.0
    assert m.operator_talk == pytest.approx(3 + 2.5 + 2 + 2.5)  # 10.0
    assert m.client_talk == pytest.approx(3.5 + 3 + 1.5 + 1.1)  # 9.1
    assert m.talk_listen_ratio == pytest.approx(10 / 9.1)
    # speech union [1,4] [4.5,10] [12,15] [15.5,17] [18,21] [22.5,25]: gaps 0.5+2+0.5+1+1.5 over a 24 s span
    assert m.silence_share == pytest.approx(5.5 / 24)
    assert m.longest_silence == pytest.approx(2.0)
    assert m.interruptions_by_operator == 1
    assert m.interruptions_by_client == 0
    assert m.overlap_time == pytest.approx(0.5 + 0.1)
    assert m.responses == 2
    assert m.response_latency_mean == pytest.approx(1.25)
    assert m.response_latency_median == pytest.approx(1.25)


def test_client_interrupts():
    m = audio_metrics([U("operator", 0, 5), U("client", 3, 6)])
    assert (m.interruptions_by_operator, m.interruptions_by_client) == (0, 1)
    assert m.duration == 6


def test_empty_call():
    m = audio_metrics([], duration=12.0)
    assert m.operator_talk == 0 and m.silence_share is None and m.responses == 0


def test_chat_response_times():
    # waits: 40 s (from the first of two unanswered messages), then 30 s
    msgs = [U("client", 0, 0), U("client", 10, 10), U("operator", 40, 40), U("operator", 50, 50), U("client", 100, 100), U("operator", 130, 130)]
    m = chat_metrics(msgs)
    assert m.first_response_time == 40
    assert m.avg_response_time == 35
    assert m.responses == 2
    assert m.duration == 130
    # operator writes first: the first response is to the client's first message
    m2 = call_metrics("chat", [U("operator", 0, 0), U("client", 5, 5), U("operator", 20, 20)])
    assert m2.first_response_time == 15
