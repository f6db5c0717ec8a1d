"""Chunks of rows: pure functions of (plan, chunk number), so workers and the inline path give the
same rows; and the worker pool that makes them for big databases."""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from typing import Any

from iofold_tui.data.source.demo.evals import EXEC_ERRORS, VERDICT_REASONS
from iofold_tui.data.source.demo.plan import (
    CHUNK,
    HOSTILE_TEXT,
    INTEGRATIONS,
    STAGING_FAILED_AT,
    Plan,
    set_id,
    ws_id,
)
from iofold_tui.data.source.demo.steps import PAD, SHAPES, Call
from iofold_tui.data.source.demo.text import (
    HEDGES,
    MODELS,
    NEG,
    NEU,
    NONE,
    NOTES,
    POS,
    RATING,
    SCENARIOS,
    SPAN,
    START,
    TOOL_ERRORS,
    dumps,
    iso_ms,
    preview,
    sql_ts,
)

POOL_MIN_TRACES = 40_000  # below this, starting worker processes costs more than it saves
IN_FLIGHT = 1  # chunks in flight beyond one per worker: bounds memory when inserting is the slower side
HUGE_STEPS_BYTES = 5_000_000


@dataclass(slots=True)
class TraceFacts:
    """What labels and executions need to know about one trace (lives for one chunk only)."""
    id: str
    ws: int
    integration: int  # index into plan.integrations
    ms: int
    scenario: int
    good: bool
    err: bool
    labels: tuple[int, ...]  # per eval set of the workspace: NONE/POS/NEG/NEU
    hostile: str | None = None
    broken: bool = False  # steps are not valid JSON
    pos: int = 0  # labels that contradict a fail / a pass (any set: the view does not scope)
    neg: int = 0

    def __post_init__(self) -> None:
        self.pos, self.neg = self.labels.count(POS), self.labels.count(NEG)

    @property
    def epoch(self) -> int:
        return self.ms // 1000


@dataclass(slots=True)
class EvalStats:
    """Per-eval aggregates; merged across chunks in chunk order."""
    count: int = 0
    contradictions: int = 0  # the inflated, unscoped-view way real data has it
    errors: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    error_samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Chunk:
    traces: list[tuple[Any, ...]]
    feedback: list[tuple[Any, ...]]
    executions: list[list[tuple[Any, ...]]]  # per eval
    stats: list[EvalStats]
    imports: Counter[tuple[int, int]]  # (integration, month) -> traces


def _trace_facts(plan: Plan, rng: random.Random, i: int) -> TraceFacts:
    w = i % plan.workspaces
    ms = START * 1000 + (i * SPAN * 1000) // plan.traces + int(rng.random() * 3_600_000)
    r, pick = rng.random(), 3
    for k, (_slug, _platform, _name, share) in enumerate(INTEGRATIONS):
        if r < share:
            pick = k
            break
        r -= share
    if pick == 3 and w == 0 and ms // 1000 > STAGING_FAILED_AT:
        pick = 0  # the broken staging integration stopped delivering
    err = rng.random() < 0.05
    good = not err and rng.random() < 0.62
    labels = []
    for s in range(plan.sets):
        if rng.random() >= 0.30:
            labels.append(NONE)
            continue
        r = rng.random()
        flip = 0.06 + 0.04 * (s % 3)  # each set disagrees with the truth (and so with other sets) a bit
        labels.append(NEU if r < 0.10 else POS if good != (r < 0.10 + 0.90 * flip) else NEG)
    return TraceFacts(
        f"trace_{i + 1:0{plan.tid_w}d}",
        w,
        w * len(INTEGRATIONS) + pick,
        ms,
        int(rng.random() * len(SCENARIOS)),
        good,
        err,
        tuple(labels),
    )


def id_width(bound: int) -> int:
    return max(6, len(str(bound)))


def _trace_row(
    plan: Plan, rng: random.Random, f: TraceFacts, imports: Counter[tuple[int, int]]
) -> tuple[Any, ...]:
    q, tool, args, result, answer, wrong = SCENARIOS[f.scenario](rng)
    cid = f"call_{rng.getrandbits(48):012x}"
    calls: list[Call] = [(cid, tool, args, result, None)]
    if f.err:
        error = TOOL_ERRORS[int(rng.random() * len(TOOL_ERRORS))]
        calls = [(cid, tool, args, None, error)]
        answer = (f"Sorry, I couldn't complete that because {tool} failed ({error.split(':')[0]}). "
                  "Please try again shortly.")
    elif not f.good:  # vague answer without a tool call, or a tool call whose result the answer contradicts
        calls, answer = (
            ([], HEDGES[int(rng.random() * len(HEDGES))]) if rng.random() < 0.6 else (calls, wrong)
        )
    if f.hostile:
        q, answer = f"{f.hostile} {q}", f"{answer} {f.hostile}"
    return _row(plan, rng, f, imports, q, calls, answer)


def _row(
    plan: Plan,
    rng: random.Random,
    f: TraceFacts,
    imports: Counter[tuple[int, int]],
    q: str,
    calls: list[Call],
    answer: str,
    steps_text: str | None = None,
    step_count: int = 0,
) -> tuple[Any, ...]:
    iid, _w, platform, _status = plan.integrations[f.integration]
    bits = rng.getrandbits(128)
    if steps_text is None:
        steps = SHAPES[platform](
            f.id, f.ms + 120, q, calls, answer, MODELS[bits % len(MODELS)], bits & 0xFFFFFFFF
        )
        steps_text, step_count = dumps(steps), len(steps)
        count = steps_text.count(PAD)
        need = max(0, (int(plan.step_bytes * (0.5 + rng.random())) - len(steps_text)) // count + len(PAD))
        start = int(rng.random() * (len(plan.corpus) - need))
        steps_text = steps_text.replace(PAD, plan.corpus[start:start + need])
    h = f"{bits:032x}"
    ext = (
        f"chatcmpl-{h[:24]}" if platform == "openai" else f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    )
    month = (f.epoch - START) // (30 * 86_400)
    imports[(f.integration, month)] += 1
    meta = dumps({"user_id": f"cust_{bits % 48_611}", "session_id": f"sess_{(bits >> 20) % 16**8:08x}",
                   "tags": ["production", SCENARIOS[f.scenario].__name__[1:]], "environment": "production",
                   "release": f"agent@2.{month + 8}.{bits % 4}"})
    output = preview(("Error: " if f.err else "") + answer) if answer else None
    return (f.id, ws_id(f.ws), iid, ext, platform, iso_ms(f.ms), meta, steps_text, preview(q) if q else None,
            output, step_count, int(f.err), sql_ts(f.epoch + 60 + bits % 3_600))


def _feedback(plan: Plan, k: int, rng: random.Random, facts: list[TraceFacts]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    prefix, jw = f"fb_{k:0{len(str(plan.chunks))}d}", len(str(plan.sets * CHUNK))
    for f in facts:
        for s, lab in enumerate(f.labels):
            if lab == NONE:
                continue
            notes = NOTES[lab]
            note = f.hostile or (notes[int(rng.random() * len(notes))] if rng.random() < 0.6 else None)
            ts = sql_ts(f.epoch + 3_600 + int(rng.random() * 21 * 86_400))
            rows.append((f"{prefix}{len(rows) + 1:0{jw}d}", set_id(f.ws, s), f.id, RATING[lab], note, ts, ts))
    return rows


def _executions(
    plan: Plan, k: int, rng: random.Random, facts: list[TraceFacts]
) -> tuple[list[list[tuple[Any, ...]]], list[EvalStats]]:
    prefix, jw = f"exec_{k:0{len(str(plan.chunks))}d}", len(str(len(plan.evals) * CHUNK))
    out: list[list[tuple[Any, ...]]] = []
    stats: list[EvalStats] = []
    stamps: dict[Any, Any] = {}
    seq = 0
    for ev in plan.evals:
        rows, st = [], EvalStats()
        for n, f in enumerate(facts):
            if f.ws != ev.ws or (rng.random() < 0.01 and not f.hostile):
                continue  # "almost" every trace: a few arrived after the run
            seq += 1
            ms = 2 + int(rng.random() ** 3 * 400)
            error = stderr = None
            if f.broken or rng.random() < 0.02:
                error = EXEC_ERRORS[-1] if f.broken else EXEC_ERRORS[int(rng.random() * len(EXEC_ERRORS))]
                result, reason = 0, f"Execution error: {error}"
                stderr = (
                    f'Traceback (most recent call last):\n  File "eval.py", line 9, in {ev.name}\n{error}\n'
                )
                ms = 5_000 if error.startswith("Timeout") else ms
                st.errors += 1
                if len(st.error_samples) < 3:
                    st.error_samples.append({"trace_id": f.id, "error": error})
            else:
                result = int(f.good == (rng.random() < ev.skill))
                reasons = VERDICT_REASONS[result][f.scenario]
                reason = reasons[int(rng.random() * len(reasons))]
            if f.hostile:
                reason = f"{reason}: {f.hostile}"
            st.count += 1
            st.contradictions += f.neg if result else f.pos
            own = f.labels[ev.set_index]
            if own in (POS, NEG) and len(st.details) < ev.training:
                detail = {"trace_id": f.id, "expected": own == POS, "predicted": bool(result),
                          "match": error is None and (own == POS) == bool(result), "reason": reason,
                          "execution_time_ms": ms}
                if error:
                    detail["error"] = error
                st.details.append(detail)
            at = max(f.epoch, ev.epoch) + 120 + n // 16  # a run does ~16 traces/s; few distinct stamps
            stamp = stamps.get(at) or stamps.setdefault(at, sql_ts(at))
            rows.append(
                (f"{prefix}{seq:0{jw}d}", ev.id, f.id, result, reason, ms, error, f.hostile, stderr, stamp)
            )
        out.append(rows)
        stats.append(st)
    return out, stats


def make_chunk(plan: Plan, k: int) -> Chunk:
    rng = random.Random(f"{plan.seed}:{k}")
    facts = [_trace_facts(plan, rng, i) for i in range(k * CHUNK, min((k + 1) * CHUNK, plan.traces))]
    imports: Counter[tuple[int, int]] = Counter()
    rows = [_trace_row(plan, rng, f, imports) for f in facts]
    return Chunk(rows, _feedback(plan, k, rng, facts), *_executions(plan, k, rng, facts), imports)


def hostile_chunk(plan: Plan) -> Chunk:
    """Hostile traces, newest of all (first on screen): markup, ANSI, controls, CJK, broken/empty/huge
    steps."""
    rng, k, end = random.Random(f"{plan.seed}:hostile"), plan.chunks, START + SPAN
    facts: list[TraceFacts] = []
    rows: list[tuple[Any, ...]] = []
    imports: Counter[tuple[int, int]] = Counter()
    for n in range(plan.hostile_count):
        labels = tuple((POS if n % 2 else NEG) if s == 0 else NONE for s in range(plan.sets))
        text = HOSTILE_TEXT[n] if n < len(HOSTILE_TEXT) else None
        extra = n - len(HOSTILE_TEXT)
        f = TraceFacts(
            f"trace_hostile_{n + 1:02d}",
            0,
            0,
            (end - 600 * (n + 1)) * 1000,
            n % len(SCENARIOS),
            False,
            False,
            labels,
            text,
            extra == 0,
        )
        facts.append(f)
        if text is not None:
            rows.append(_trace_row(plan, rng, f, imports))
        elif extra == 0:  # an exporter cut the value short
            cut = '[{"step_id": "step_1", "messages_added": [{"role": "user", "content": "Where is my ord'
            rows.append(_row(plan, rng, f, imports, "Where is my order? (steps cut short)", [], "", cut, 1))
        elif extra == 1:
            rows.append(_row(plan, rng, f, imports, "", [], "", "[]", 0))
        else:
            rows.append(_row(plan, rng, f, imports, "Show me the API logs of the last 24 hours", _huge_call(),
                             "Here are the last 24 hours of API logs."))
    return Chunk(rows, _feedback(plan, k, rng, facts), *_executions(plan, k, rng, facts), imports)


def _huge_call() -> list[Call]:
    """One tool result of ≈5 MB of log lines: the multi-MB steps value real databases contain."""
    lines: list[str] = []
    size = i = 0
    while size < HUGE_STEPS_BYTES:
        lines.append(f"2025-11-26T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z api-{i % 8} "
                     f"GET /v1/orders/{i} 200 {i % 997}ms")
        size += len(lines[-1]) + 3
        i += 1
    return [("call_logs", "fetch_logs", {"service": "api", "since": "24h"}, {"lines": lines}, None)]


_WORKER_PLAN: Plan | None = None


def _init_worker(plan: Plan) -> None:
    global _WORKER_PLAN
    _WORKER_PLAN = plan


def _work(k: int) -> Chunk:
    assert _WORKER_PLAN is not None
    return make_chunk(_WORKER_PLAN, k)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextmanager
def worker_pool(plan: Plan) -> Iterator[Pool | None]:
    """Worker processes for big databases, or None (generate inline).

    fork, not spawn: spawn re-runs the caller's ``__main__`` (any script without a main guard breaks).
    Forking is only safe while no other thread runs (a thread may hold a lock the child inherits), and
    it happens before the output database is opened, so no connection crosses the fork.
    """
    if plan.traces < POOL_MIN_TRACES or sys.platform != "linux" or threading.active_count() > 1:
        yield None
        return
    with multiprocessing.get_context("fork").Pool(_workers(), _init_worker, (plan,)) as pool:
        yield pool


def all_chunks(plan: Plan, pool: Pool | None) -> Iterator[Chunk]:
    """All chunks in order; with a pool only a few are in flight, so memory stays flat."""
    if pool is None:
        yield from (make_chunk(plan, k) for k in range(plan.chunks))
    else:
        pending: deque[Any] = deque()
        for k in range(plan.chunks):
            pending.append(pool.apply_async(_work, (k,)))
            if len(pending) > _workers() + IN_FLIGHT - 1:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    if plan.hostile:
        yield hostile_chunk(plan)
