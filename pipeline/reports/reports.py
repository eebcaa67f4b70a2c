"""Owner reports: each report is a function from ``ReportData`` (``data.load``,
the one place that reads the database) to a pandas DataFrame, so the owner
pages, ``callreview report KIND`` and the tests show the same numbers.
"""


from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from statistics import mean
from typing import Any, Callable, Iterable

import pandas as pd
from sqlalchemy.orm import Session

from pipeline.reports import situations, stats
from pipeline.reports.conversation import call_metrics
from pipeline.reports.data import DONE, CallInfo, Judgement, ReportData, ReportError, ReviewInfo, load
from pipeline.vocabulary import Category, Role, SaleOutcome, StepStatus

# --- helpers -----------------------------------------------------------------


def _rate_cols(prefix: str, k: int, n: int) -> dict[str, Any]:
    r = stats.wilson(k, n)
    return {f"{prefix}": r.p, f"{prefix}_low": r.low, f"{prefix}_high": r.high}


def _week(t: dt.datetime | None) -> str:
    if t is None:
        return "(unknown)"
    monday = (t.date() - dt.timedelta(days=t.weekday()))
    return monday.isoformat()


def _period(t: dt.datetime | None, period: str) -> str:
    if t is None:
        return "(unknown)"
    if period == "month":
        return t.strftime("%Y-%m")
    if period == "day":
        return t.date().isoformat()
    return _week(t)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return mean(vals) if vals else None


def _step_order(data: ReportData, checklist_id: str | None) -> list[str]:
    """Step ids of a checklist in script order: newest version first, then steps only older ones had."""
    order: list[str] = []
    calls = sorted((c for c in data.calls.values() if c.checklist_id == checklist_id), key=lambda c: -(c.version or 0))
    for c in calls:
        for sid, _ in c.steps:
            if sid not in order:
                order.append(sid)
    return order


# --- 2. steps ------------------------------------------------------------------


def steps_report(data: ReportData, by_version: bool = False) -> pd.DataFrame:
    """Per script step: share of reviewed calls where it was correct, incorrect,
    not in script or missing, each with a Wilson 95% interval."""
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for (rid, sid), j in data.verdicts().items():
        c = data.calls[rid]
        key = (c.checklist_id, c.version if by_version else None, sid)
        counts[key][j.category] += 1
    rows = []
    checklists = sorted({k[0] or "" for k in counts})
    for cl in checklists:
        order = _step_order(data, cl or None)
        keys = sorted((k for k in counts if (k[0] or "") == cl),
                      key=lambda k: (k[1] or 0, order.index(k[2]) if k[2] in order else len(order), k[2]))
        for key in keys:
            cnt = counts[key]
            n = sum(cnt.values())
            row: dict[str, Any] = {"checklist": cl}
            if by_version:
                row["version"] = key[1]
            row.update({"step_id": key[2], "step": data.title(cl, key[2]), "reviewed_calls": n})
            for cat in tuple(Category):
                row[f"{cat}_n"] = cnt[cat]
            for cat in tuple(Category):
                row.update(_rate_cols(cat, cnt[cat], n))
            rows.append(row)
    cols = ["checklist"] + (["version"] if by_version else []) + ["step_id", "step", "reviewed_calls"]
    cols += [f"{c}_n" for c in tuple(Category)] + [f"{c}{s}" for c in tuple(Category) for s in ("", "_low", "_high")]
    return pd.DataFrame(rows, columns=cols)


def machine_steps_report(data: ReportData) -> pd.DataFrame:
    """Per script step, over every aligned call: the share where the aligner
    found it (a machine estimate), the share done on the calls listeners
    reviewed (Wilson interval), and the two joined (``stats.corrected_rate``):
    the machine's share corrected by the reviews of calls drawn at random,
    while reviews of calls chosen on purpose count only for themselves.
    ``interval_vs_listeners`` is the corrected interval's width over the
    listeners' own: 0.6 means 40% narrower for the same reviews."""
    verdicts = data.verdicts()
    # Per step: the machine's answer on every call, on the calls not chosen on purpose,
    # (listener, machine) on the random reviews, the listener's on the chosen ones.
    per_step: dict[tuple[str, str], tuple[list, list, list, list]] = defaultdict(lambda: ([], [], [], []))
    for c in data.calls.values():
        for sid, status in c.pipeline.items():
            every, machine, reviewed, known = per_step[(c.checklist_id or "", sid)]
            f = float(status == StepStatus.FOUND)
            every.append(f)
            j = verdicts.get((c.recording_id, sid))
            y = None if j is None else float(j.category in DONE)
            if y is not None and not c.drawn_at_random:
                known.append(y)
                continue
            machine.append(f)
            if y is not None:
                reviewed.append((y, f))
    rows = []
    for cl in sorted({cl for cl, _ in per_step}):
        order = _step_order(data, cl or None)
        for sid in sorted((s for c, s in per_step if c == cl), key=lambda s: (order.index(s) if s in order else len(order), s)):
            every, machine, reviewed, known = per_step[(cl, sid)]
            ys = [y for y, _ in reviewed] + known
            listeners = stats.wilson(round(sum(ys)), len(ys))
            est = stats.corrected_rate(machine, reviewed, known)
            width = None if est.low is None or listeners.low is None else est.high - est.low
            rows.append({
                "checklist": cl, "step_id": sid, "step": data.title(cl, sid), "calls": len(every),
                "machine_found": sum(every) / len(every),
                "reviewed_calls": len(ys), "random_reviews": len(reviewed),
                "listeners_done": listeners.p, "listeners_done_low": listeners.low, "listeners_done_high": listeners.high,
                "estimate": est.p, "estimate_low": est.low, "estimate_high": est.high,
                "interval_vs_listeners": width / (listeners.high - listeners.low) if width is not None else None,
            })
    cols = ["checklist", "step_id", "step", "calls", "machine_found", "reviewed_calls", "random_reviews", "listeners_done",
            "listeners_done_low", "listeners_done_high", "estimate", "estimate_low", "estimate_high", "interval_vs_listeners"]
    return pd.DataFrame(rows, columns=cols)


def versions_report(data: ReportData) -> pd.DataFrame:
    """Script versions side by side: per step, reviewed calls and the share done
    correctly and missing in each version."""
    long = steps_report(data, by_version=True)
    if long.empty:
        return pd.DataFrame(columns=["checklist", "step_id", "step"])
    out = None
    for v, part in long.groupby("version", sort=True):
        part = part[["checklist", "step_id", "step", "reviewed_calls", "correct", "missing"]].rename(
            columns={"reviewed_calls": f"v{v}_calls", "correct": f"v{v}_correct", "missing": f"v{v}_missing"}
        )
        out = part if out is None else out.merge(part, on=["checklist", "step_id", "step"], how="outer")
    order = {cl: _step_order(data, cl) for cl in out["checklist"].unique()}
    out["_o"] = [order[cl].index(s) if s in order[cl] else 99 for cl, s in zip(out["checklist"], out["step_id"])]
    return out.sort_values(["checklist", "_o"]).drop(columns="_o").reset_index(drop=True)


def funnel_report(data: ReportData) -> pd.DataFrame:
    """Where leads drop off: for calls without an order, the last script step
    reached (done, right or wrong), per script version. Reviewed calls use the
    listener's verdict, the others the aligner's. Without any CRM outcomes,
    every call counts (``scope`` says which)."""
    verdicts = data.verdicts()
    have_outcomes = any(c.outcome for c in data.calls.values())
    per_version: dict[tuple, list[str | None]] = defaultdict(list)
    for c in data.calls.values():
        if not c.steps or (have_outcomes and (c.outcome is None or c.outcome == SaleOutcome.ORDER)):
            continue
        last = None
        for sid, _ in c.steps:
            j = verdicts.get((c.recording_id, sid))
            done = j.category in DONE if j is not None else c.pipeline.get(sid) == StepStatus.FOUND
            if done:
                last = sid
        per_version[(c.checklist_id, c.version)].append(last)
    rows = []
    scope = "calls without an order" if have_outcomes else "all calls (no CRM outcomes imported)"
    for (cl, v), lasts in sorted(per_version.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or 0)):
        order = next(c.steps for c in data.calls.values() if (c.checklist_id, c.version) == (cl, v))
        ids = [sid for sid, _ in order]
        total = len(lasts)
        idx = [ids.index(x) if x is not None else -1 for x in lasts]
        rows.append({"checklist": cl, "version": v, "step_id": "(none)", "step": "(no step done)",
                     "stopped_here": idx.count(-1), "reached": total, "reached_share": 1.0 if total else None,
                     "calls": total, "scope": scope})
        for i, (sid, title) in enumerate(order):
            reached = sum(1 for x in idx if x >= i)
            rows.append({"checklist": cl, "version": v, "step_id": sid, "step": title,
                         "stopped_here": idx.count(i), "reached": reached,
                         "reached_share": reached / total if total else None, "calls": total, "scope": scope})
    return pd.DataFrame(rows, columns=["checklist", "version", "step_id", "step", "stopped_here", "reached",
                                       "reached_share", "calls", "scope"])


# --- 3. operators ----------------------------------------------------------------


def _call_adherence(data: ReportData) -> dict[int, float]:
    """Per reviewed call: share of its steps done correctly."""
    per_call: dict[int, list[str]] = defaultdict(list)
    for (rid, _sid), j in data.verdicts().items():
        per_call[rid].append(j.category)
    return {rid: cats.count(Category.CORRECT) / len(cats) for rid, cats in per_call.items() if cats}


def operators_report(data: ReportData, confidence: float = 0.95) -> pd.DataFrame:
    """Scorecard per operator: adherence from reviewed calls (mean share of steps
    done correctly) with the margin of error those calls give, the aligner's
    adherence and off-script sentences per call over all calls (machine
    estimates), and conversion where outcomes are known."""
    adherence = _call_adherence(data)
    by_op: dict[str, list[CallInfo]] = defaultdict(list)
    for c in data.calls.values():
        by_op[c.operator].append(c)
    rows = []
    for op in sorted(by_op):
        calls = by_op[op]
        reviewed = [adherence[c.recording_id] for c in calls if c.recording_id in adherence]
        n, total = len(reviewed), len(calls)
        known = [c for c in calls if c.outcome]
        orders = [c for c in known if c.outcome == SaleOutcome.ORDER]
        rows.append({
            "operator": op,
            "calls": total,
            "reviewed_calls": n,
            "adherence": mean(reviewed) if reviewed else None,
            "margin_of_error": stats.margin_of_error(n, total, confidence),
            "auto_adherence": _mean(c.auto_adherence for c in calls),
            "auto_off_script": _mean(None if c.off_script is None else float(c.off_script) for c in calls),
            "calls_with_outcome": len(known),
            "conversion": len(orders) / len(known) if known else None,
            "avg_order_value": _mean(c.amount for c in orders),
        })
    return pd.DataFrame(rows, columns=["operator", "calls", "reviewed_calls", "adherence", "margin_of_error",
                                       "auto_adherence", "auto_off_script", "calls_with_outcome", "conversion", "avg_order_value"])


def operator_steps_report(data: ReportData) -> pd.DataFrame:
    """Per operator and step: over all the operator's aligned calls, the share
    where the aligner found the step (a machine estimate); over the reviewed
    ones, the share done correctly (Wilson 95%) and missing."""
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for (rid, sid), j in data.verdicts().items():
        c = data.calls[rid]
        counts[(c.operator, c.checklist_id or "", sid)][j.category] += 1
    found: dict[tuple, list[bool]] = defaultdict(list)
    for c in data.calls.values():
        for sid, status in c.pipeline.items():
            found[(c.operator, c.checklist_id or "", sid)].append(status == StepStatus.FOUND)
    rows = []
    for key in sorted(set(counts) | set(found)):
        op, cl, sid = key
        cnt, machine = counts[key], found[key]
        n = sum(cnt.values())
        row = {"operator": op, "checklist": cl, "step_id": sid, "step": data.title(cl, sid), "calls": len(machine),
               "machine_found": sum(machine) / len(machine) if machine else None, "reviewed_calls": n,
               "correct_n": cnt[Category.CORRECT]}
        row.update(_rate_cols("correct", cnt[Category.CORRECT], n))
        row["missing"] = cnt[Category.MISSING] / n if n else None
        rows.append(row)
    return pd.DataFrame(rows, columns=["operator", "checklist", "step_id", "step", "calls", "machine_found", "reviewed_calls",
                                       "correct_n", "correct", "correct_low", "correct_high", "missing"])


def operator_trend_report(data: ReportData, period: str = "week") -> pd.DataFrame:
    """Adherence per operator per week (Monday's date) of the call."""
    adherence = _call_adherence(data)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rid, a in adherence.items():
        c = data.calls[rid]
        groups[(c.operator, _period(c.call_time, period))].append(a)
    rows = [{"operator": op, "period": p, "reviewed_calls": len(v), "adherence": mean(v)}
            for (op, p), v in sorted(groups.items())]
    return pd.DataFrame(rows, columns=["operator", "period", "reviewed_calls", "adherence"])


CONVERSATION_COLUMNS = [
    "duration", "operator_talk", "client_talk", "talk_listen_ratio", "silence_share", "longest_silence",
    "interruptions_by_operator", "interruptions_by_client", "response_latency_mean",
]


def conversation_calls_report(data: ReportData) -> pd.DataFrame:
    """Conversation metrics of every call that has a transcript."""
    rows = []
    for rid, utts in sorted(data.utterances.items()):
        c = data.calls.get(rid)
        if c is None or not utts:
            continue
        m = call_metrics(c.kind, utts, c.duration)
        rows.append({"recording_id": rid, "file": c.name, "operator": c.operator, **m.as_dict()})
    cols = ["recording_id", "file", "operator", "kind", *CONVERSATION_COLUMNS, "overlap_time",
            "response_latency_median", "responses", "first_response_time", "avg_response_time"]
    return pd.DataFrame(rows, columns=cols)


def conversation_report(data: ReportData) -> pd.DataFrame:
    """Per operator, averages over their calls: talk time, talk/listen ratio,
    silences, interruptions, response latency; for chats first and average response time."""
    calls = conversation_calls_report(data)
    rows = []
    for op, part in calls.groupby("operator", sort=True):
        audio, chat = part[part["kind"] == "audio"], part[part["kind"] == "chat"]
        row: dict[str, Any] = {"operator": op, "audio_calls": len(audio), "chats": len(chat)}
        for col in CONVERSATION_COLUMNS:
            row[col] = _mean(_none(audio[col]))
        row["chat_first_response_time"] = _mean(_none(chat["first_response_time"]))
        row["chat_avg_response_time"] = _mean(_none(chat["avg_response_time"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["operator", "audio_calls", "chats", *CONVERSATION_COLUMNS,
                                       "chat_first_response_time", "chat_avg_response_time"])


def chats_report(data: ReportData) -> pd.DataFrame:
    """Per operator, the chat KPIs an online shop watches: chats, missed ones
    (the visitor wrote, nobody replied), first and average response time of
    the answered ones (seconds, as the visitor waited), and the visitors'
    rating where the export has one."""
    calls = conversation_calls_report(data).set_index("recording_id")
    by_op: dict[str, list[CallInfo]] = defaultdict(list)
    for c in data.calls.values():
        if c.kind == "chat":
            by_op[c.operator].append(c)
    rows = []
    for op in sorted(by_op):
        chats = by_op[op]
        answered = [c.recording_id for c in chats if c.answered and c.recording_id in calls.index]
        ratings = [c.rating for c in chats if c.rating is not None]
        rows.append({
            "operator": op, "chats": len(chats), "missed": sum(not c.answered for c in chats),
            "missed_share": sum(not c.answered for c in chats) / len(chats),
            "first_response_time": _mean(_none(calls.loc[answered, "first_response_time"])) if answered else None,
            "avg_response_time": _mean(_none(calls.loc[answered, "avg_response_time"])) if answered else None,
            "rated_chats": len(ratings), "rating": mean(ratings) if ratings else None,
        })
    return pd.DataFrame(rows, columns=["operator", "chats", "missed", "missed_share", "first_response_time",
                                       "avg_response_time", "rated_chats", "rating"])


def worst_chats_report(data: ReportData, limit: int = 10) -> pd.DataFrame:
    """The lowest-rated chats (missed ones first among equals), each with its
    review: who reviewed it, the share of steps marked correct, the comments."""
    verdicts = data.verdicts()
    rated = sorted((c for c in data.calls.values() if c.kind == "chat" and c.rating is not None),
                   key=lambda c: (c.rating, c.answered, c.recording_id))[:limit]
    rows = []
    for c in rated:
        mine = [j for (rid, _), j in verdicts.items() if rid == c.recording_id]
        rows.append({
            "recording_id": c.recording_id, "file": c.name, "operator": c.operator, "rating": c.rating,
            "missed": not c.answered, "reviewed_by": ", ".join(sorted({j.reviewer for j in mine})),
            "correct": sum(j.category == Category.CORRECT for j in mine) / len(mine) if mine else None,
            "comments": "; ".join(f"{data.title(c.checklist_id, j.step_id)}: {j.comment}" for j in mine if j.comment),
        })
    return pd.DataFrame(rows, columns=["recording_id", "file", "operator", "rating", "missed", "reviewed_by", "correct",
                                       "comments"])


def call_review(data: ReportData, recording_id: int) -> pd.DataFrame:
    """One call's review as the reports count it: per step, the verdict, who gave it and the comment."""
    c = data.calls[recording_id]
    verdicts = data.verdicts()
    rows = [{"step": title, "category": j.category, "reviewer": j.reviewer, "comment": j.comment}
            for sid, title in c.steps if (j := verdicts.get((recording_id, sid))) is not None]
    return pd.DataFrame(rows, columns=["step", "category", "reviewer", "comment"])


def _none(series: pd.Series) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in series]


# --- 6. listeners --------------------------------------------------------------


def _by_unit(data: ReportData, roles: tuple[str, ...] = (Role.LISTENER,)) -> dict[tuple[int, str], dict[str, Judgement]]:
    """(call, step) -> reviewer -> judgement, for the given reviewer roles."""
    units: dict[tuple[int, str], dict[str, Judgement]] = defaultdict(dict)
    for j in data.judgements:
        if j.category is not None and j.reviewer_role in roles:
            units[(j.recording_id, j.step_id)].setdefault(j.reviewer, j)
    return units


def _present(category: str) -> bool:
    return category in DONE


def listeners_report(data: ReportData, period_rate: bool = True) -> pd.DataFrame:
    """Per listener: submitted reviews and pay, agreement with gold (owner's
    marks) and with peers on overlap calls (share agreeing and Cohen's kappa),
    and agreement with the aligner on whether each step happened."""
    listeners = sorted({r.reviewer for r in data.reviews if r.reviewer_role == Role.LISTENER})
    gold = _by_unit(data, (Role.OWNER,))
    units = _by_unit(data)
    rows = []
    for name in listeners:
        mine = [r for r in data.reviews if r.reviewer == name]
        g_a, g_b, p_a, p_b, pipe_a, pipe_b = [], [], [], [], [], []
        for key, by_reviewer in units.items():
            j = by_reviewer.get(name)
            if j is None:
                continue
            owner = next(iter(gold.get(key, {}).values()), None)
            if owner is not None:
                g_a.append(j.category)
                g_b.append(owner.category)
            for other, oj in by_reviewer.items():
                if other != name:
                    p_a.append(j.category)
                    p_b.append(oj.category)
            if j.category != Category.NOT_IN_SCRIPT and j.pipeline_status:
                pipe_a.append(_present(j.category))
                pipe_b.append(j.pipeline_status == StepStatus.FOUND)
        rate = mine[0].rate if mine else 0.0
        rows.append({
            "listener": name,
            "reviews": len(mine),
            "gold_reviews": sum(r.is_gold for r in mine),
            "gold_steps": len(g_a),
            "gold_agreement": stats.percent_agreement(g_a, g_b),
            "gold_kappa": stats.cohen_kappa(g_a, g_b),
            "peer_steps": len(p_a),
            "peer_agreement": stats.percent_agreement(p_a, p_b),
            "peer_kappa": stats.cohen_kappa(p_a, p_b),
            "pipeline_steps": len(pipe_a),
            "pipeline_agreement": stats.percent_agreement(pipe_a, pipe_b),
            "pipeline_kappa": stats.cohen_kappa(pipe_a, pipe_b),
            "rate": rate,
            "pay": len(mine) * rate,
        })
    return pd.DataFrame(rows, columns=["listener", "reviews", "gold_reviews", "gold_steps", "gold_agreement",
                                       "gold_kappa", "peer_steps", "peer_agreement", "peer_kappa", "pipeline_steps",
                                       "pipeline_agreement", "pipeline_kappa", "rate", "pay"])


@dataclass(frozen=True)
class Agreement:
    units: int  # (call, step) pairs rated by two or more listeners
    percent: float | None
    alpha: float | None  # Krippendorff, nominal
    fleiss: float | None  # only when every unit has the same number of ratings


def overall_agreement(data: ReportData) -> Agreement:
    multi = [[j.category for j in by.values()] for by in _by_unit(data).values() if len(by) >= 2]
    return _agreement(multi)


def _agreement(units: list[list[str]]) -> Agreement:
    if not units:
        return Agreement(0, None, None, None)
    pairs = [(a, b) for u in units for i, a in enumerate(u) for b in u[i + 1:]]
    percent = sum(a == b for a, b in pairs) / len(pairs)
    fleiss = None
    if len({len(u) for u in units}) == 1:
        table = [[u.count(c) for c in tuple(Category)] for u in units]
        fleiss = stats.fleiss_kappa(table)
    return Agreement(len(units), percent, stats.krippendorff_alpha(units), fleiss)


def agreement_report(data: ReportData) -> pd.DataFrame:
    """Agreement between listeners on overlap calls: overall and per step."""
    per_step: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for (rid, sid), by in _by_unit(data).items():
        if len(by) >= 2:
            per_step[(data.calls[rid].checklist_id or "", sid)].append([j.category for j in by.values()])
    rows = []
    overall = overall_agreement(data)
    rows.append({"checklist": "", "step_id": "(all)", "step": "(all steps)", **overall.__dict__})
    for cl in sorted({k[0] for k in per_step}):
        order = _step_order(data, cl or None)
        for (c, sid) in sorted((k for k in per_step if k[0] == cl), key=lambda k: order.index(k[1]) if k[1] in order else 99):
            a = _agreement(per_step[(c, sid)])
            rows.append({"checklist": c, "step_id": sid, "step": data.title(c, sid), **a.__dict__})
    return pd.DataFrame(rows, columns=["checklist", "step_id", "step", "units", "percent", "alpha", "fleiss"])


def disagreements_report(data: ReportData) -> pd.DataFrame:
    """Calibration view: every step where reviewers of the same call disagree,
    with each one's mark and comment, the gold mark and the aligner's verdict."""
    units = _by_unit(data, (Role.LISTENER, Role.OWNER))
    rows = []
    for (rid, sid), by in sorted(units.items()):
        cats = {j.category for j in by.values()}
        if len(by) < 2 or len(cats) < 2:
            continue
        c = data.calls[rid]
        gold = next((j.category for j in by.values() if j.reviewer_role == Role.OWNER), None)
        rows.append({
            "recording_id": rid, "file": c.name, "operator": c.operator, "step_id": sid,
            "step": data.title(c.checklist_id, sid),
            "pipeline": next(iter(by.values())).pipeline_status,
            "gold": gold,
            "marks": "; ".join(f"{name}: {j.category}" for name, j in sorted(by.items()) if j.reviewer_role != Role.OWNER),
            "comments": "; ".join(f"{name}: {j.comment}" for name, j in sorted(by.items()) if j.comment),
        })
    return pd.DataFrame(rows, columns=["recording_id", "file", "operator", "step_id", "step", "pipeline", "gold",
                                       "marks", "comments"])


def throughput_report(data: ReportData, period: str = "week") -> pd.DataFrame:
    """Submitted reviews and pay (reviews x the listener's rate) per listener and period."""
    groups: dict[tuple[str, str], list[ReviewInfo]] = defaultdict(list)
    for r in data.reviews:
        if r.reviewer_role == Role.LISTENER:
            groups[(r.reviewer, _period(r.submitted_at, period))].append(r)
    rows = [{"listener": name, "period": p, "reviews": len(rs), "gold_reviews": sum(r.is_gold for r in rs),
             "rate": rs[0].rate, "pay": len(rs) * rs[0].rate} for (name, p), rs in sorted(groups.items())]
    return pd.DataFrame(rows, columns=["listener", "period", "reviews", "gold_reviews", "rate", "pay"])


# --- 4. sales outcomes ------------------------------------------------------------


def outcomes_report(data: ReportData) -> pd.DataFrame:
    """Per step: conversion (share of calls ending in an order, Wilson 95%) and
    average order value for calls where the step was done versus not done.
    Reviewed calls use the listener's verdict, the others the aligner's;
    "not in script" verdicts count as neither."""
    verdicts = data.verdicts()
    groups: dict[tuple[str, str], dict[bool, list[CallInfo]]] = defaultdict(lambda: {True: [], False: []})
    for c in data.calls.values():
        if not c.outcome:
            continue
        for sid, _ in c.steps:
            j = verdicts.get((c.recording_id, sid))
            if j is not None:
                if j.category == Category.NOT_IN_SCRIPT:
                    continue
                done = j.category in DONE
            else:
                done = c.pipeline.get(sid) == StepStatus.FOUND
            groups[(c.checklist_id or "", sid)][done].append(c)
    rows = []
    for cl in sorted({k[0] for k in groups}):
        order = _step_order(data, cl or None)
        for key in sorted((k for k in groups if k[0] == cl), key=lambda k: order.index(k[1]) if k[1] in order else 99):
            row: dict[str, Any] = {"checklist": cl, "step_id": key[1], "step": data.title(cl, key[1])}
            for done, label in ((True, "done"), (False, "not_done")):
                calls = groups[key][done]
                orders = [c for c in calls if c.outcome == SaleOutcome.ORDER]
                row[f"{label}_calls"] = len(calls)
                row[f"{label}_orders"] = len(orders)
                row.update(_rate_cols(f"{label}_conversion", len(orders), len(calls)))
                row[f"{label}_aov"] = _mean(c.amount for c in orders)
            d, nd = row["done_conversion"], row["not_done_conversion"]
            row["conversion_lift"] = d - nd if d is not None and nd is not None else None
            rows.append(row)
    cols = ["checklist", "step_id", "step"]
    for label in ("done", "not_done"):
        cols += [f"{label}_calls", f"{label}_orders", f"{label}_conversion", f"{label}_conversion_low",
                 f"{label}_conversion_high", f"{label}_aov"]
    return pd.DataFrame(rows, columns=cols + ["conversion_lift"])


# --- 5. sampling ---------------------------------------------------------------------


def sample_size_report(population: int, confidences: Iterable[float] = (0.9, 0.95, 0.99),
                       margins: Iterable[float] = (0.03, 0.05, 0.1)) -> pd.DataFrame:
    """Calls to review for each confidence and margin, for this many calls."""
    margins = list(margins)
    rows = [{"population": population, "confidence": c, "margin": m, "sample_size": stats.cochran(population, c, m)}
            for c in confidences for m in margins]
    return pd.DataFrame(rows, columns=["population", "confidence", "margin", "sample_size"])


def _situations(session: Session, data: ReportData) -> pd.DataFrame:
    return situations.situations_report(session, data)


# name -> (builder over (session, data), one-line description); the CLI and the pages list these.
REPORTS: dict[str, tuple[Callable[[Session, ReportData], pd.DataFrame], str]] = {
    "situations": (_situations, "Script improvement: not-in-script situations, grouped"),
    "steps": (lambda s, d: steps_report(d), "Per step: correct / incorrect / not in script / missing with 95% intervals"),
    "machine-steps": (lambda s, d: machine_steps_report(d),
                      "Per step over every call: the machine's share, the listeners', and the machine's corrected by the random sample"),
    "funnel": (lambda s, d: funnel_report(d), "Drop-off funnel: last step reached in calls without an order"),
    "chats": (lambda s, d: chats_report(d), "Per operator: chats, missed ones, response times, visitors' rating"),
    "worst-chats": (lambda s, d: worst_chats_report(d), "The lowest-rated chats with their reviews"),
    "versions": (lambda s, d: versions_report(d), "Script versions side by side"),
    "operators": (lambda s, d: operators_report(d), "Operator scorecard"),
    "operator-steps": (lambda s, d: operator_steps_report(d), "Per operator and step: share done correctly"),
    "operator-trend": (lambda s, d: operator_trend_report(d), "Weekly adherence per operator"),
    "conversation": (lambda s, d: conversation_report(d), "Conversation metrics per operator"),
    "conversation-calls": (lambda s, d: conversation_calls_report(d), "Conversation metrics per call"),
    "outcomes": (lambda s, d: outcomes_report(d), "Conversion and order value by step done / not done"),
    "listeners": (lambda s, d: listeners_report(d), "Listener quality: gold, peer and pipeline agreement, pay"),
    "agreement": (lambda s, d: agreement_report(d), "Agreement between listeners, overall and per step"),
    "disagreements": (lambda s, d: disagreements_report(d), "Calibration: steps where reviewers disagree"),
    "throughput": (lambda s, d: throughput_report(d), "Reviews and pay per listener and week"),
}


def build(kind: str, session: Session, data: ReportData | None = None) -> pd.DataFrame:
    """The report named ``kind`` (see ``REPORTS``)."""
    if kind not in REPORTS:
        raise ReportError(f"Unknown report {kind!r}. Reports: {', '.join(REPORTS)}.")
    needs_text = kind.startswith("conversation") or kind == "chats"
    data = data or load(session, with_utterances=needs_text)
    return REPORTS[kind][0](session, data)
