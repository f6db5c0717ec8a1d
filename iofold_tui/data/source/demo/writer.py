"""Writing the rows of a plan into the new database (main process only): accounts, chunks as they
come, then the evals and jobs that summarise them."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from typing import Any

from iofold_tui.data.source.demo.chunks import Chunk, EvalStats
from iofold_tui.data.source.demo.evals import EVAL_SETS, eval_code
from iofold_tui.data.source.demo.plan import (
    INTEGRATIONS,
    STAGING_ERROR,
    STAGING_FAILED_AT,
    Plan,
    set_id,
    set_info,
    ws_id,
)
from iofold_tui.data.source.demo.text import NAMES, SPAN, START, dumps, iso_ms, sql_ts


class Writer:
    def __init__(self, conn: sqlite3.Connection, plan: Plan) -> None:
        self.conn, self.plan = conn, plan
        self.stats = [EvalStats() for _ in plan.evals]
        self.imports: Counter[tuple[int, int]] = Counter()
        self.feedback = self.executions = self.jobs = 0

    def accounts(self) -> None:
        c, plan = self.conn, self.plan
        users: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        for w in range(plan.workspaces):
            ts = sql_ts(START - 30 * 86_400 + w * 3_600)
            c.execute(
                "INSERT INTO workspaces VALUES (?,?,?,?)", (ws_id(w), f"Northwind agents {w + 1}", ts, ts)
            )
            for role in ("owner", "admin", "member") if w == 0 else ("owner",):
                k = len(users) + 1
                name = NAMES[(k - 1) % len(NAMES)]
                users.append(
                    (f"user_{k:04d}", f"{name.lower().replace(' ', '.')}+{k}@northwind.io", name, ts, ts)
                )
                members.append((f"wm_{k:04d}", ws_id(w), f"user_{k:04d}", role, ts))
            for s in range(plan.sets):
                name, desc = set_info(s)
                c.execute("INSERT INTO eval_sets VALUES (?,?,?,?,?,?,?)", (
                    set_id(w, s), ws_id(w), name, desc, 5 + 5 * (s % 3), sql_ts(START + 86_400 * (s + 1)),
                    sql_ts(START + SPAN)))
        for (iid, w, platform, status), (slug, _p, name, _share) in zip(
                plan.integrations, INTEGRATIONS * plan.workspaces, strict=True):
            broken = status == "error"
            synced = STAGING_FAILED_AT - 7 * 86_400 if broken else START + SPAN
            config = dumps({"project": f"{slug}-{w + 1}", "sync_interval_minutes": 60, "import_limit": 1000})
            c.execute(
                "INSERT INTO integrations VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    iid,
                    ws_id(w),
                    platform,
                    name,
                    f"enc:v1:{(w * 131 + len(slug)) % 997:03d}:Zm9vYmFyYmF6",
                    None if platform == "openai" else f"https://{platform}.example.com",
                    config,
                    status,
                    STAGING_ERROR if broken else None,
                    sql_ts(synced),
                    sql_ts(START - 29 * 86_400),
                    sql_ts(synced),
                ),
            )
        c.executemany("INSERT INTO users VALUES (?,?,?,?,?)", users)
        c.executemany("INSERT INTO workspace_members VALUES (?,?,?,?,?)", members)

    def chunk(self, ch: Chunk) -> None:
        c = self.conn
        c.executemany("INSERT INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", ch.traces)
        c.executemany("INSERT INTO feedback VALUES (?,?,?,?,?,?,?)", ch.feedback)
        self.feedback += len(ch.feedback)
        for rows, total, part, ev in zip(ch.executions, self.stats, ch.stats, self.plan.evals, strict=True):
            c.executemany("INSERT INTO eval_executions VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            self.executions += len(rows)
            total.count += part.count
            total.contradictions += part.contradictions
            total.errors += part.errors
            total.details.extend(part.details[:ev.training - len(total.details)])
            total.error_samples.extend(part.error_samples[:3 - len(total.error_samples)])
        self.imports.update(ch.imports)

    def evals(self) -> None:
        rows = []
        for i, (ev, st) in enumerate(zip(self.plan.evals, self.stats, strict=True)):
            correct = sum(1 for d in st.details if d["match"])
            errors = sum(1 for d in st.details if "error" in d)
            total = len(st.details)
            accuracy = round(correct / total, 4) if total else None
            results = {
                "correct": correct,
                "incorrect": total - correct - errors,
                "errors": errors,
                "total": total,
                "accuracy": accuracy,
                "details": st.details,
            }
            desc, ts = set_info(ev.set_index)[1], sql_ts(ev.epoch)
            rows.append(
                (
                    ev.id,
                    ev.set_id,
                    ev.name,
                    desc,
                    ev.version,
                    self.plan.evals[i - 1].id if ev.version > 1 else None,
                    eval_code(EVAL_SETS[ev.set_index % len(EVAL_SETS)][2], ev.name, desc, ev.version),
                    ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929")[ev.version % 2],
                    f"Write a Python eval for '{ev.name}' from {total} labelled traces.",
                    None
                    if ev.version == 1
                    else "Tighten the length threshold; count tool errors as failures.",
                    accuracy,
                    dumps(results),
                    dumps([d["trace_id"] for d in st.details]),
                    st.count,
                    st.contradictions,
                    "active" if ev.version == self.plan.versions else "archived",
                    ts,
                    ts,
                )
            )
        self.conn.executemany("INSERT INTO evals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def write_jobs(self) -> None:
        plan, rng = self.plan, random.Random(f"{self.plan.seed}:jobs")
        rows: list[tuple[Any, ...]] = []
        seen: set[tuple[str, str]] = set()

        def job(
            w: int,
            kind: str,
            status: str,
            created: int,
            context: dict[str, Any],
            result: dict[str, Any] | None = None,
            error: str | None = None,
            seconds: int = 30,
        ) -> None:
            started = None if status == "queued" else created + 1 + int(rng.random() * 5)
            done = None if started is None or status == "running" else started + seconds
            progress = {"queued": 0, "running": 42, "completed": 100}.get(status, 5 + int(rng.random() * 90))
            seen.add((kind, status))
            rows.append(
                (
                    f"job_{len(rows) + 1:06d}",
                    ws_id(w),
                    kind,
                    status,
                    progress,
                    dumps(context),
                    None if result is None else dumps(result),
                    error,
                    sql_ts(created),
                    None if started is None else sql_ts(started),
                    None if done is None else sql_ts(done),
                )
            )

        def import_ctx(iid: str, lo: int, hi: int, limit: int) -> dict[str, Any]:
            return {
                "integration_id": iid,
                "filters": {"date_from": iso_ms(lo * 1000), "date_to": iso_ms(hi * 1000), "limit": limit},
            }

        for (integ, month), count in sorted(self.imports.items()):  # one sync job per integration and month
            iid, w, _platform, _status = plan.integrations[integ]
            lo = START + month * 30 * 86_400
            failed = int(rng.random() * 2)
            result: dict[str, Any] = {"imported": count, "skipped": int(rng.random() * 4), "failed": failed}
            if failed:
                result["errors"] = [
                    {"trace_id": f"ext-{rng.getrandbits(32):08x}", "error": "observation too large"}
                ]
            job(
                w,
                "import",
                "completed",
                lo + 30 * 86_400 + 600,
                import_ctx(iid, lo, lo + 30 * 86_400, 100_000),
                result,
                seconds=20 + count // 50,
            )
        for iid, w, _platform, status in plan.integrations:
            if status == "error":
                job(w, "import", "failed", STAGING_FAILED_AT, import_ctx(iid, STAGING_FAILED_AT - 86_400,
                                                                         STAGING_FAILED_AT, 1000), None,
                    STAGING_ERROR, seconds=3)
        for ev, st in zip(plan.evals, self.stats, strict=True):
            summary = {"correct": sum(1 for d in st.details if d["match"]), "total": len(st.details)}
            accuracy = round(summary["correct"] / summary["total"], 4) if summary["total"] else None
            job(
                ev.ws,
                "generate",
                "completed",
                ev.epoch - 90,
                {"workspaceId": ws_id(ev.ws), "evalSetId": ev.set_id},
                {"eval_id": ev.id, "accuracy": accuracy, "test_results": summary},
                seconds=25 + int(rng.random() * 40),
            )
            result = {"completed": st.count - st.errors, "failed": st.errors}
            if st.error_samples:
                result["errors"] = st.error_samples
            job(
                ev.ws,
                "execute",
                "completed",
                ev.epoch + 60,
                {"workspaceId": ws_id(ev.ws), "evalId": ev.id},
                result,
                seconds=10 + st.count // 200,
            )
        # Every type x status pair exists at least once, as on a busy real workspace.
        end = START + SPAN
        ctx = {
            "import": import_ctx(plan.integrations[0][0], end - 86_400, end, 500),
            "generate": {"workspaceId": ws_id(0), "evalSetId": set_id(0, 0)},
            "execute": {
                "workspaceId": ws_id(0),
                "evalId": plan.evals[-1].id if plan.evals else "eval_missing",
                "traceIds": [f"trace_{k:0{plan.tid_w}d}" for k in range(1, min(plan.traces, 3) + 1)],
            },
        }
        done: dict[str, dict[str, Any]] = {
            "import": {"imported": 0, "skipped": 0, "failed": 0},
            "execute": {"completed": 0, "failed": 0},
            "generate": {"eval_id": None, "accuracy": None, "test_results": None},
        }
        errors = {"failed": "Worker exceeded CPU time limit", "cancelled": "Cancelled by user"}
        for kind in ("import", "generate", "execute"):
            for status in ("queued", "running", "completed", "failed", "cancelled"):
                if (kind, status) not in seen:
                    job(0, kind, status, end - 1 - int(rng.random() * 3_600), ctx[kind],
                        done[kind] if status == "completed" else None, errors.get(status), seconds=5)
        self.conn.executemany("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        self.jobs = len(rows)
