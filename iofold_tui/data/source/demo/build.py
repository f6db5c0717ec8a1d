"""The demo database and a deterministic synthetic iofold v1.0 database of any size.

``generate()`` builds rows chunk by chunk (``demo/chunks``); every chunk is a pure function of
(arguments, chunk number) with its own seeded RNG, so the same arguments always give the same rows,
whether chunks are made inline or by worker processes (big databases). Per-trace facts live for one
chunk only, so memory does not grow with the number of traces. Indexes and the view are created after
the bulk insert (far faster than maintaining 26 indexes row by row); the finished file holds exactly
schema.sql's objects. The content comes from ``demo/text`` (scenarios), ``demo/steps`` (the producer
shapes of steps) and ``demo/evals`` (eval code); ``demo/plan`` fixes what depends on the arguments and
``demo/writer`` inserts the rows.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

from iofold_tui.data.errors import SourceError
from iofold_tui.data.paths import schema_dir
from iofold_tui.data.source.demo.chunks import all_chunks, worker_pool
from iofold_tui.data.source.demo.plan import Plan, make_plan
from iofold_tui.data.source.demo.writer import Writer


def build_demo_db(path: Path) -> Path:
    """schema.sql + seed.sql into a fresh file at ``path`` (replacing any previous demo file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(schema_dir().joinpath("schema.sql").read_text(encoding="utf-8"))
        conn.executescript(schema_dir().joinpath("seed.sql").read_text(encoding="utf-8"))
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class GenerateReport:
    path: Path
    traces: int  # including hostile ones
    hostile_traces: int
    workspaces: int
    integrations: int
    eval_sets: int
    evals: int
    feedback: int
    executions: int
    jobs: int
    seconds: float
    size_bytes: int


def _schema_parts() -> tuple[list[str], list[str]]:
    """schema.sql split into (tables, everything else in file order) so indexes come after the bulk load."""
    tables: list[str] = []
    later: list[str] = []
    buf = ""
    for line in schema_dir().joinpath("schema.sql").read_text(encoding="utf-8").splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            body = re.sub(r"^(\s*--[^\n]*\n)*\s*", "", buf)
            (tables if re.match(r"CREATE\s+TABLE", body, re.I) else later).append(buf)
            buf = ""
    return tables, later


def generate(path: Path, *, traces: int, eval_sets: int = 3, versions: int = 2, seed: int = 0,
             workspaces: int = 1, step_bytes: int = 1500, hostile: bool = False,
             progress: Callable[[int, int], None] | None = None) -> GenerateReport:
    """Write a deterministic synthetic v1.0 database (same arguments → same rows) to the new file ``path``.

    ``traces`` per run, spread round-robin over ``workspaces``; each workspace has ``eval_sets`` sets with
    ``versions`` evals each. ``step_bytes`` is the mean size of ``traces.steps`` (a conversation is never
    smaller than its natural ≈0.7–2.8 KB). ``hostile`` adds 7 hostile traces (markup, ANSI, control
    characters, CJK/emoji, invalid JSON, ``[]``, ≈5 MB). ``progress(done, total)`` is called after every
    chunk (total counts hostile traces too). Bad arguments or an existing ``path`` raise SourceError.
    """
    path = Path(path)
    for ok, problem in (
        (traces >= 1, "--traces must be at least 1"),
        (eval_sets >= 0, "--eval-sets must be >= 0"),
        (versions >= 1, "--versions must be at least 1"),
        (workspaces >= 1, "--workspaces must be >= 1"),
        (step_bytes >= 200, "step size must be at least 200 bytes"),
    ):
        if not ok:
            raise SourceError(path, problem)
    if path.exists():
        raise SourceError(path, "already exists; remove it or choose another output path")
    if not path.parent.is_dir():
        raise SourceError(path, "its directory does not exist")
    began = time.perf_counter()
    plan = make_plan(traces, eval_sets, versions, seed, workspaces, step_bytes, hostile)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.unlink(missing_ok=True)
    with worker_pool(plan) as pool:
        writer = _build(tmp, plan, pool, progress)
    os.replace(tmp, path)
    return GenerateReport(
        path,
        plan.traces + plan.hostile_count,
        plan.hostile_count,
        workspaces,
        len(plan.integrations),
        eval_sets * workspaces,
        len(plan.evals),
        writer.feedback,
        writer.executions,
        writer.jobs,
        round(time.perf_counter() - began, 3),
        path.stat().st_size,
    )


def _build(tmp: Path, plan: Plan, pool: Pool | None, progress: Callable[[int, int], None] | None) -> Writer:
    total = plan.traces + plan.hostile_count
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "locking_mode=EXCLUSIVE",
            "cache_size=-65536",
            "threads=2",
        ):
            conn.execute(f"PRAGMA {pragma}")
        tables, later = _schema_parts()
        for sql in tables:
            conn.execute(sql)
        writer = Writer(conn, plan)
        conn.execute("BEGIN")
        writer.accounts()
        done = 0
        for ch in all_chunks(plan, pool):
            writer.chunk(ch)
            done += len(ch.traces)
            if progress:
                progress(done, total)
        writer.evals()
        writer.write_jobs()
        conn.execute("COMMIT")
        for sql in later:  # indexes, then the view: sqlite_master ends up exactly as schema.sql makes it
            conn.execute(sql)
        conn.execute("PRAGMA locking_mode=NORMAL")
        conn.execute("PRAGMA journal_mode=DELETE")
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    return writer
