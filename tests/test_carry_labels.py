"""A fresh export must not strand labels (issue 14): labels made on a.sql are found, counted and carried
when b.sql (a newer export of the same D1 database, recognised by its ids, not its name) is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from _labels_helpers import ES
from click.testing import CliRunner
from conftest import build_db

from iofold_tui.cli import main
from iofold_tui.data.labels.carry import carry_labels, check_opened
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.source.loader import open_source


def dump(db: Path, out: Path) -> Path:
    """A SQL export of ``db`` (what `wrangler d1 export` gives, near enough for the loader)."""
    conn = sqlite3.connect(db)
    out.write_text("\n".join(conn.iterdump()) + "\n")
    conn.close()
    return out


def rows(db: Path) -> dict[str, tuple]:
    conn = sqlite3.connect(db)
    try:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT trace_id, id, rating, notes FROM feedback WHERE eval_set_id = ?", (ES,))}
    finally:
        conn.close()


@pytest.fixture
def d1(tmp_path: Path) -> Path:
    """The shared D1 database, as a plain SQLite file the 'colleague' edits."""
    return build_db(tmp_path / "d1.sqlite")


def label_a(a_sql: Path) -> None:
    opened = open_source(a_sql)
    with LabelStore(opened.db.path, history_path=opened.history_path) as store:
        store.set_label(ES, "trace_001", "negative", note="mine")  # nobody else touches it: carried
        store.set_label(ES, "trace_002", "neutral")  # the colleague re-notes it: conflict
        store.set_label(ES, "trace_003", None)  # the colleague deletes it too: already in D1
        store.set_label(ES, "trace_004", "positive")


def colleague(d1: Path) -> None:
    conn = sqlite3.connect(d1)
    with conn:
        conn.execute("UPDATE feedback SET notes = 'colleague' WHERE trace_id = 'trace_002'")
        conn.execute("DELETE FROM feedback WHERE trace_id = 'trace_003'")
    conn.close()


def test_newer_export_is_recognised_and_labels_carried(d1: Path, tmp_path: Path) -> None:
    a_sql = dump(d1, tmp_path / "monday.sql")
    label_a(a_sql)
    colleague(d1)
    b_sql = dump(d1, tmp_path / "tuesday.sql")  # another name: recognised by its ids

    opened = open_source(b_sql)
    report = check_opened(opened)
    assert report is not None
    verdicts = {i.change.trace_id: i.verdict for _, i in report.items}
    assert verdicts == {
        "trace_001": "apply",
        "trace_002": "conflict",
        "trace_003": "done",
        "trace_004": "apply",
    }
    assert report.not_in_d1 == 3
    notice = report.notice("tuesday.sql")
    assert notice is not None and notice.startswith(
        "3 labels made on an older copy of this D1 database (monday.sql)"
    )
    assert "carry-labels tuesday.sql" in notice and "export-labels" in notice

    before = rows(opened.db.path)
    with LabelStore(opened.db.path, history_path=opened.history_path) as store:
        result = carry_labels(store, report)
        assert result.carried == 2 and len(result.conflicts) == 1
        after = rows(opened.db.path)
        assert after["trace_001"][1:] == ("negative", "mine") and after["trace_004"][1] == "positive"
        assert after["trace_002"] == before["trace_002"]  # the colleague's note stays
        store.undo()  # one step
        assert rows(opened.db.path) == before
        store.redo()
    assert check_opened(open_source(b_sql)) is None or not check_opened(open_source(b_sql)).not_in_d1

    # export-labels b.sql now carries them back to D1, conditional on D1 still holding b.sql's rows
    patch = CliRunner().invoke(main, ["export-labels", str(b_sql)])
    assert patch.exit_code == 0 and patch.stderr.startswith("2 label changes (2 upserts, 0 deletions)")
    conn = sqlite3.connect(d1)
    conn.executescript(
        "\n".join(x for x in patch.stdout.splitlines() if not x.startswith("SELECT 'conflict"))
    )
    conn.close()
    landed = rows(d1)
    assert landed["trace_001"][1:] == ("negative", "mine") and landed["trace_002"][2] == "colleague"


def test_export_over_the_same_file_still_finds_the_labels(d1: Path, tmp_path: Path) -> None:
    """`wrangler d1 export --output export.sql` every day: the old working copy is evicted, its labels are
    not."""
    sql = dump(d1, tmp_path / "export.sql")
    label_a(sql)
    colleague(d1)
    dump(d1, sql)
    opened = open_source(sql)
    report = check_opened(opened)
    assert report is not None and report.not_in_d1 == 3
    notice = report.notice(str(sql))
    assert notice is not None and "export them first" not in notice  # that copy is gone: only carrying works
    result = CliRunner().invoke(main, ["carry-labels", str(sql), "--from", str(sql)])
    assert result.exit_code == 0, result.output
    assert "2 to carry, 1 already in this export, 1 conflict" in result.stdout
    assert rows(opened.db.path)["trace_001"][1] == "negative"


def test_another_database_is_not_mistaken_for_a_newer_copy(d1: Path, tmp_path: Path) -> None:
    label_a(dump(d1, tmp_path / "a.sql"))
    other = build_db(tmp_path / "other.sqlite")
    conn = sqlite3.connect(other)
    with conn:
        for table in ("eval_sets", "feedback", "evals"):  # foreign keys are off: rename by hand
            column = "id" if table == "eval_sets" else "eval_set_id"
            conn.execute(f"UPDATE {table} SET {column} = 'set_elsewhere'")
        conn.execute("UPDATE workspaces SET id = 'ws_elsewhere'")
    conn.close()
    assert check_opened(open_source(dump(other, tmp_path / "b.sql"))) is None


def test_cli_notices_and_dry_run(d1: Path, tmp_path: Path) -> None:
    a_sql = dump(d1, tmp_path / "a.sql")
    label_a(a_sql)
    colleague(d1)
    b_sql = dump(d1, tmp_path / "b.sql")
    info = CliRunner().invoke(main, ["info", str(b_sql)])
    assert info.exit_code == 0 and "note: 3 labels made on an older copy" in info.stderr
    exported = CliRunner().invoke(main, ["export-labels", str(b_sql)])
    assert "0 label changes" in exported.stderr and "carry-labels" in exported.stderr
    dry = CliRunner().invoke(main, ["carry-labels", str(b_sql), "--dry-run"])
    assert dry.exit_code == 0 and "trace_002" in dry.stdout and "carried 2" not in dry.stdout
    assert check_opened(open_source(b_sql)).not_in_d1 == 3  # a dry run carries nothing
    missing = CliRunner().invoke(main, ["carry-labels", str(b_sql), "--from", str(tmp_path / "nosuch.sql")])
    assert missing.exit_code == 2 and "nosuch.sql" in missing.stderr
    plain = CliRunner().invoke(main, ["carry-labels", str(d1)])
    assert plain.exit_code == 2 and "d1.sqlite" in plain.stderr


async def test_tui_says_so_and_carries(d1: Path, tmp_path: Path) -> None:
    from iofold_tui.ui import carry
    from iofold_tui.ui.app import IofoldApp

    label_a(dump(d1, tmp_path / "a.sql"))
    colleague(d1)
    opened = open_source(dump(d1, tmp_path / "b.sql"))
    app = IofoldApp(opened, watch_interval=0)
    said: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (said.append(str(message)), notify(message, **kw))[1]  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if carry.stranded(app) is not None:
                break
            await pilot.pause(0.02)
        assert carry.stranded(app) is not None
        assert any("3 labels made on an older copy (a.sql) not in D1 yet" in m for m in said), said
        assert any(c.title == carry.COMMAND for c in app.get_system_commands(app.screen))
        carry.ask_carry(app)
        await pilot.pause()
        await pilot.press("y")
        for _ in range(200):
            if rows(opened.db.path)["trace_001"][1] == "negative":
                break
            await pilot.pause(0.02)
        assert rows(opened.db.path)["trace_001"][1:] == ("negative", "mine")
        assert carry.stranded(app) is None


def test_labels_already_back_in_d1_are_not_reported(d1: Path, tmp_path: Path) -> None:
    from iofold_tui.data.labels.patch import export_changes

    a_sql = dump(d1, tmp_path / "a.sql")
    label_a(a_sql)
    a = open_source(a_sql)
    with LabelStore(a.db.path, history_path=a.history_path) as store:
        conn = sqlite3.connect(d1)
        conn.executescript(export_changes(store))  # exported and applied: nothing stranded
        conn.close()
    b_sql = dump(d1, tmp_path / "b.sql")
    report = check_opened(open_source(b_sql))
    assert report is not None and report.not_in_d1 == 0 and report.notice("b.sql") is None
    assert check_opened(open_source(b_sql)) is None  # that copy is settled: not read again
    with LabelStore(a.db.path, history_path=a.history_path) as store:
        store.set_label(ES, "trace_005", "neutral")  # a label made on a.sql later
    again = check_opened(open_source(b_sql))
    assert again is not None and [i.change.trace_id for _, i in again.to_carry] == ["trace_005"]


def test_open_with_carry_labels_carries_before_the_app_starts(d1: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from iofold_tui.ui.app import IofoldApp

    started: list[bool] = []
    monkeypatch.setattr(IofoldApp, "run", lambda self, *a, **k: started.append(True))
    label_a(dump(d1, tmp_path / "a.sql"))
    colleague(d1)
    b_sql = dump(d1, tmp_path / "b.sql")
    result = CliRunner().invoke(main, [str(b_sql), "--carry-labels"])
    assert result.exit_code == 0 and started == [True] and "carried 2 label changes" in result.stdout
    assert rows(open_source(b_sql).db.path)["trace_001"][1] == "negative"
    plain = CliRunner().invoke(main, [str(d1), "--carry-labels"])
    assert plain.exit_code == 2 and started == [True]
