"""Benchmark of labelling as a team (issue 18): agreement between copies and import of labels.

    python3 bench/bench_team.py DB [--work DIR] [--import-labels 100000] [--runs 3] [--json]

Make DB with ``iofold-tui demo-db DB --traces 1000000 --eval-sets 1`` (about 300k labels in one eval set).
DB itself is never written: the bench copies it twice into --work (default DB's folder + ``.team``) and
makes the copies disagree (bob: every 10th label flipped, every 20th removed; carol: every 7th made
neutral). Measures, warm cache, median of --runs:
  - agreement mine × bob (Cohen's κ, confusion, counts, disagreements count), then also against every eval
    version of the set;
  - agreement mine × bob × carol (adds Fleiss' κ and the three pairs), then also against the versions;
  - the first page of 100 disagreements and a page deep in the set (keyset);
  - import of --import-labels labels from a CSV into a copy that lacks them (parse + check + preview, then
    the one undoable step), and undoing that step.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iofold_tui.data.labels.agreement_open import open_agreement
from iofold_tui.data.labels.importing import apply_import, plan_import
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.source.loader import open_source


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _median(fn: Any, runs: int) -> tuple[Any, float]:
    results = [_timed(fn) for _ in range(runs)]
    return results[-1][0], statistics.median(t for _, t in results)


def _copy(db: Path, out: Path, edit: str) -> Path:
    if not out.exists():
        tmp = out.with_name(out.name + ".partial")
        shutil.copyfile(db, tmp)
        conn = sqlite3.connect(tmp)
        with conn:
            conn.executescript(edit)
        conn.close()
        os.replace(tmp, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", type=Path)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--import-labels", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    db: Path = args.db.resolve()
    work = (args.work or db.with_name(db.name + ".team")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("IOFOLD_TUI_DATA_DIR", str(work / "data"))
    os.environ.setdefault("IOFOLD_TUI_CACHE_DIR", str(work / "cache"))
    bob = _copy(
        db,
        work / "bob.sqlite",
        "UPDATE feedback SET rating = CASE rating WHEN 'positive' THEN 'negative' ELSE 'positive' END "
        "WHERE rowid % 10 = 0; DELETE FROM feedback WHERE rowid % 20 = 1;",
    )
    carol = _copy(db, work / "carol.sqlite", "UPDATE feedback SET rating = 'neutral' WHERE rowid % 7 = 0;")

    out: dict[str, Any] = {"db": str(db)}
    ro = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    out["traces"] = ro.execute("SELECT count(*) FROM traces").fetchone()[0]
    out["labels_per_copy"] = ro.execute("SELECT count(*) FROM feedback").fetchone()[0]
    out["eval_sets"] = ro.execute("SELECT count(*) FROM eval_sets").fetchone()[0]
    out["eval_versions"] = ro.execute("SELECT count(*) FROM evals").fetchone()[0]
    ro.close()
    opened = open_source(db, read_only=True)

    def agreement(others: list[Path], versions: bool) -> dict[str, Any]:
        with open_agreement(opened, [str(o) for o in others]) as session:
            return session.report(versions=versions)

    report, out["agreement_2_s"] = _median(lambda: agreement([bob], False), args.runs)
    first = report["eval_sets"][0]["pairs"][0]
    out["agreement_2_pair"] = {k: first[k] for k in ("overlap", "agree", "percent_agreement", "cohens_kappa")}
    report, out["agreement_2_with_versions_s"] = _median(lambda: agreement([bob], True), args.runs)
    report, out["agreement_3_s"] = _median(lambda: agreement([bob, carol], False), args.runs)
    out["agreement_3_fleiss"] = report["eval_sets"][0]["fleiss"]
    report, out["agreement_3_with_versions_s"] = _median(lambda: agreement([bob, carol], True), args.runs)
    with open_agreement(opened, [str(bob), str(carol)]) as session:
        es = session.eval_sets()[0][0]
        page, t = _median(lambda: session.disagreements(es, limit=100), args.runs)
        out["disagreements_first_page_ms"] = t * 1000
        deep = page[-1].trace_id
        for _ in range(50):
            deep = session.disagreements(es, after=deep, limit=100)[-1].trace_id
        _, t = _median(lambda: session.disagreements(es, after=deep, limit=100), args.runs)
        out["disagreements_page_51_ms"] = t * 1000

    # import: labels of DB that a copy lacks
    target = work / "import_target.sqlite"
    n = args.import_labels
    csv_path = work / "theirs.csv"
    ro = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    rows = ro.execute("SELECT eval_set_id, trace_id, rating, notes FROM feedback ORDER BY rowid LIMIT ?",
                      (n,)).fetchall()
    ro.close()
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["eval_set_id", "trace_id", "rating", "notes"])
        w.writerows(rows)
    if target.exists():
        target.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        shutil.copyfile(db, Path(tmp) / "t.sqlite")
        conn = sqlite3.connect(Path(tmp) / "t.sqlite")
        with conn:
            conn.execute(
                "DELETE FROM feedback WHERE rowid IN (SELECT rowid FROM feedback ORDER BY rowid LIMIT ?)",
                (n,),
            )
        conn.close()
        os.replace(Path(tmp) / "t.sqlite", target)
    t_opened = open_source(target)
    plan, out["import_preview_s"] = _timed(lambda: plan_import(t_opened, csv_path))
    out["import_rows"] = len(plan.items)
    out["import_counts"] = plan.counts()
    store = LabelStore(t_opened.db.path, history_path=t_opened.history_path)
    try:
        result, out["import_apply_s"] = _timed(lambda: apply_import(store, plan))
        out["import_written"] = result.written
        out["import_total_s"] = out["import_preview_s"] + out["import_apply_s"]
        _, out["import_undo_s"] = _timed(store.undo)
    finally:
        store.close()
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        print(f"{k:32} {v:.3f}" if isinstance(v, float) else f"{k:32} {v}")


if __name__ == "__main__":
    main()
