"""The contradiction matrix, headless: the report behind ``iofold-tui stats``, its text table, and the
on-disk statistics cache. Statistics live in ``matrix.stats``, the paged grid in ``matrix.grid``
(both re-exported here so callers import one module)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iofold_tui.data.db import file_fingerprint
from iofold_tui.data.labels.counts import RATED, label_counts
from iofold_tui.data.matrix.comparison_view import comparison_source
from iofold_tui.data.matrix.stats import (
    METRICS,
    MatrixStats,
    compute_stats,
)
from iofold_tui.data.paths import cache_dir, path_key
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.source.catalog import EvalSet, eval_sets
from iofold_tui.data.source.catalog import resolve_eval_set as _resolve

CACHE_FORMAT = 2  # +1: the 'invalid' result state


class UnknownEvalSet(ValueError):
    """``--eval-set`` names no eval set; the message lists the known ones (CLI: one line, exit 2)."""


def resolve_eval_set(conn: sqlite3.Connection, name_or_id: str, workspace_id: str | None = None) -> EvalSet:
    """An eval set by id, else by unique name."""
    try:
        return _resolve(conn, name_or_id, workspace_id)
    except ValueError as err:
        raise UnknownEvalSet(str(err)) from None


# ---------------------------------------------------------------- report

def _labels(conn: sqlite3.Connection, eval_set_id: str) -> dict[str, int]:
    counts = label_counts(conn, eval_set_id)
    return {r: counts[r] for r in RATED}


def stats_report(conn: sqlite3.Connection, eval_set: str | None = None, *, workspace_id: str | None = None,
                 with_view_counts: bool = True) -> dict[str, Any]:
    """JSON-able per-version statistics of one eval set (name or id), or of every set when None."""
    sets = [resolve_eval_set(conn, eval_set, workspace_id)] if eval_set else eval_sets(conn, workspace_id)
    out: list[dict[str, Any]] = []
    for es in sets:
        stats = compute_stats(conn, es.id, with_view_counts=with_view_counts)
        out.append({
            "id": es.id, "name": es.name, "workspace_id": es.workspace_id, "labels": _labels(conn, es.id),
            "evals": [s.to_dict() for s in stats],
        })
    return {"source": comparison_source(conn), "eval_sets": out}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _metric_cell(ev: dict[str, Any], name: str) -> str:
    value = ev.get(name)
    return ev["undefined"].get(name, "n/a") if value is None else _fmt(value)


_ROW_NAMES = {"f1": "F1", "cohens_kappa": "Cohen's kappa", "contradiction_rate": "contradiction rate"}


def format_stats_text(report: dict[str, Any]) -> str:
    """A plain-text table: one column per eval version, one row per number."""
    lines = [f"comparison source: {report['source']}"]
    for es in report["eval_sets"]:
        labels = es["labels"]
        # Names come from the database: one_line() makes control characters visible (no terminal escapes).
        lines += [
            "",
            f"eval set {one_line(es['name'], 80)} ({one_line(es['id'], 80)}): {labels['positive']} positive, "
            f"{labels['negative']} negative, {labels['neutral']} neutral labels",
        ]
        evals = es["evals"]
        if not evals:
            lines.append("  no evals")
            continue
        rows: list[tuple[str, list[str]]] = [
            ("eval", [f"{one_line(e['name'], 40)} v{e['version']}" for e in evals]),
            ("status", [one_line(e["status"], 20) for e in evals]),
            ("n (judged)", [str(e["n"]) for e in evals]),
        ]
        for key in ("tp", "fp", "fn", "tn"):
            rows.append((key.upper(), [str(e[key]) for e in evals]))
        for key in METRICS:
            rows.append((_ROW_NAMES.get(key, key), [_metric_cell(e, key) for e in evals]))
        rows.append(("contradictions", [str(e["contradictions"]) for e in evals]))
        for key in ("neutral", "errors", "invalid_result", "unlabelled", "not_run"):
            rows.append(
                (f"excluded: {key.replace('_', ' ')}", [str(e["excluded"].get(key, 0)) for e in evals])
            )
        rows.append(("executions", [str(e["execution_count"]) for e in evals]))
        for key, label in (("accuracy", "stored accuracy"), ("contradiction_count", "stored contradictions"),
                           ("execution_count", "stored executions")):
            rows.append(
                (
                    label,
                    [
                        _fmt(e["stored"][key]) + (" ≠ recomputed" if e["stored"]["differs"][key] else "")
                        for e in evals
                    ],
                )
            )
        rows.append(
            ("unscoped view contradictions", [_fmt(e["view_unscoped"]["contradictions"]) for e in evals])
        )
        label_w = max(len(r[0]) for r in rows)
        col_w = [max(len(r[1][i]) for r in rows) for i in range(len(evals))]
        for label, cells in rows:
            lines.append(
                "  "
                + label.ljust(label_w)
                + "  "
                + "  ".join(c.rjust(w) for c, w in zip(cells, col_w, strict=True))
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- cache

@dataclass
class CachedStats:
    stats: list[MatrixStats]
    hit: bool


def _cache_file(db_path: Path, eval_set_id: str, eval_ids: Sequence[str] | None) -> Path:
    scope = json.dumps([eval_set_id, sorted(eval_ids) if eval_ids is not None else None])
    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return cache_dir() / "stats" / f"{path_key(db_path)}-{digest}.json"


def cached_stats(conn: sqlite3.Connection, db_path: Path | str | None, eval_set_id: str,
                 eval_ids: Sequence[str] | None = None) -> CachedStats:
    """``compute_stats`` through a JSON cache in ``cache_dir()/stats`` (never the user's database).

    Valid while the database file and its -wal keep their size and mtime; ``db_path=None`` (an
    in-memory copy) always computes.
    """
    if db_path is None:
        return CachedStats(compute_stats(conn, eval_set_id, eval_ids), False)
    path = Path(db_path).resolve()
    file = _cache_file(path, eval_set_id, eval_ids)
    fingerprint = file_fingerprint(path)
    try:
        data = json.loads(file.read_text())
        if data.get("format") == CACHE_FORMAT and data.get("fingerprint") == fingerprint:
            return CachedStats([MatrixStats.from_dict(d) for d in data["stats"]], True)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or unreadable cache: recompute
    stats = compute_stats(conn, eval_set_id, eval_ids)
    if file_fingerprint(path) == fingerprint:  # don't cache numbers computed while the file changed
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "db": str(path), "fingerprint": fingerprint,
                                   "stats": [s.to_dict() for s in stats]}))
        os.replace(tmp, file)
    return CachedStats(stats, False)
