"""With the REAL wrangler: a colleague's label change made in D1 between our export and our apply survives.

export a.sql -> label on the working copy -> the colleague relabels / deletes / adds labels in the (local)
D1 -> `export-labels --check` on a fresh export lists the conflicts -> `wrangler d1 execute --file` applies
the patch: its closing SELECT reports the same conflicts, the colleague's rows are untouched, ours land
everywhere else; applying it again changes nothing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _labels_helpers import ES
from click.testing import CliRunner
from wrangler_tools import WranglerProject, require_wrangler

from iofold_tui.cli import main
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.paths import schema_dir
from iofold_tui.data.source.loader import open_source

pytestmark = pytest.mark.wrangler
ES_RT = "set_roundtrip"


def feedback(db: Path) -> dict[tuple[str, str], tuple]:
    conn = sqlite3.connect(db)
    try:
        return {(r[1], r[2]): r for r in conn.execute(
            "SELECT id, eval_set_id, trace_id, rating, notes, created_at, updated_at FROM feedback")}
    finally:
        conn.close()


def test_colleagues_change_survives_the_apply(tmp_path: Path) -> None:
    d1 = WranglerProject(tmp_path / "project", require_wrangler())
    init = tmp_path / "init.sql"
    init.write_text(
        (schema_dir() / "schema.sql").read_text()
        + "\n"
        + (schema_dir() / "seed.sql").read_text()
        + f"\nINSERT INTO eval_sets (id, workspace_id, name) VALUES ('{ES_RT}', 'ws_demo', 'rt');\n"
    )
    d1.execute_file(init)
    a_sql = d1.export(tmp_path / "a.sql")

    opened = open_source(a_sql)
    with LabelStore(opened.db.path, history_path=opened.history_path) as store:
        store.set_label(ES, "trace_001", "negative", note="mine")  # colleague relabels it too: conflict
        store.set_label(ES, "trace_002", "neutral")  # colleague deletes it: conflict (deletion survives)
        store.set_label(ES, "trace_003", None)  # colleague leaves it: our delete lands
        store.set_label(ES_RT, "trace_001", "positive")  # colleague labels it first: conflict
        store.set_label(ES_RT, "trace_002", "negative")  # nobody else: lands
        store.set_label(ES, "trace_005", "negative")  # colleague made the same change: already there
    ours = feedback(opened.db.path)

    d1.execute(
        f"UPDATE feedback SET rating = 'neutral', notes = 'colleague' WHERE eval_set_id = '{ES}' "
        "AND trace_id = 'trace_001'; "
        f"DELETE FROM feedback WHERE eval_set_id = '{ES}' AND trace_id = 'trace_002'; "
        f"INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES ('fb_colleague', '{ES_RT}', "
        "'trace_001', 'negative'); "
        f"UPDATE feedback SET rating = 'negative' WHERE eval_set_id = '{ES}' AND trace_id = 'trace_005'; "
        f"INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES ('fb_c3', '{ES_RT}', 'trace_003', "
        "'neutral')"
    )
    b_sql = d1.export(tmp_path / "b.sql")
    colleague = feedback(open_source(b_sql).db.path)

    check = CliRunner().invoke(main, ["export-labels", str(a_sql), "--check", str(b_sql)])
    assert check.exit_code == 1, check.output
    listed = [line for line in check.stdout.splitlines() if line.startswith("  ")]
    assert len(listed) == 3 and "3 conflicts" in check.stdout and "1 already there" in check.stdout
    assert {("trace_001", ES), ("trace_002", ES), ("trace_001", ES_RT)} == {
        (t, es) for t in ("trace_001", "trace_002") for es in (ES, ES_RT)
        if any(f"{es} / {t}:" in line for line in listed)}

    on_dir = CliRunner().invoke(
        main, ["export-labels", str(a_sql), "--check", str(d1.root)]
    )  # the wrangler dir
    assert on_dir.exit_code == 1 and on_dir.stdout.splitlines()[1:] == check.stdout.splitlines()[1:]

    patch = tmp_path / "labels.sql"
    result = CliRunner().invoke(main, ["export-labels", str(a_sql), "-o", str(patch)])
    assert result.exit_code == 0, result.output
    applied = d1.execute_file(patch)
    reported = {(r["eval_set_id"], r["trace_id"]) for r in applied[-1]["results"]}
    assert reported == {(ES, "trace_001"), (ES, "trace_002"), (ES_RT, "trace_001")}
    assert d1.execute_file(patch)[-1]["results"] == applied[-1]["results"]  # twice = once, same report

    after = feedback(open_source(d1.export(tmp_path / "c.sql")).db.path)
    for key in reported:  # the colleague's rows (and the deletion) survive
        assert after.get(key) == colleague.get(key)
    assert after[(ES_RT, "trace_002")] == ours[(ES_RT, "trace_002")]  # ours lands where no conflict
    assert (ES, "trace_003") not in after
    assert after[(ES_RT, "trace_003")] == colleague[(ES_RT, "trace_003")]  # a row we never touched
    assert after[(ES, "trace_005")][3] == "negative"
