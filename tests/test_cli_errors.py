"""CLI error class (issue 14): every failure is one line naming the user's file, exit 2; no noise in a pipe.

Covers: a `.sql` source's errors name the .sql (not the cache working copy), a corrupt database names its
file for every reading command, `screenshot --select` of a missing id and a too-small `--size` exit 2,
`… | head -1` prints nothing on stderr, run-eval says before running that it replaces the stored counters.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from iofold_tui.cli import main
from iofold_tui.data.text import plural


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(result, *names: str) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for name in names:
        assert name in err, err
    return err


def test_plural() -> None:
    assert plural(1, "label change") == "1 label change"
    assert plural(0, "label change") == "0 label changes"
    assert plural(1500, "step") == "1,500 steps"
    assert plural(2, "match") == "2 matches"
    assert plural(3, "entry", "entries") == "3 entries"


def test_sql_export_errors_name_the_users_file(tmp_path: Path) -> None:
    sql = tmp_path / "not-iofold.sql"
    sql.write_text("CREATE TABLE foo (x INTEGER);\nINSERT INTO foo VALUES (1);\n")
    for command in ("info", "stats", "export-labels"):
        err = one_line_error(invoke(command, str(sql)), str(sql))
        assert os.environ["IOFOLD_TUI_CACHE_DIR"] not in err  # never the working copy in the cache


def corrupt(seed_db: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "damaged.sqlite"
    shutil.copy(seed_db, bad)
    data = bytearray(bad.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(page, len(data) - 8, page):  # every page after the first (schema) one
        data[start:start + 8] = b"\xff" * 8
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["stats"],
        ["overview"],
        ["sql", "SELECT count(*) FROM traces"],
        ["run-eval", "eval_response_quality_v1", "--dry-run"],
    ],
)
def test_corrupt_database_names_the_file(seed_db: Path, tmp_path: Path, command: list[str]) -> None:
    bad = corrupt(seed_db, tmp_path)
    args = [command[0], str(bad), *command[1:]]
    one_line_error(invoke(*args), str(bad))


def test_screenshot_rejects_missing_select_and_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "x.svg"
    one_line_error(invoke("screenshot", "--demo", "--select", "nosuch", "-o", str(out)), "nosuch")
    one_line_error(invoke("screenshot", "--demo", "--size", "10x5", "-o", str(out)), "10x5")
    one_line_error(invoke("screenshot", "--demo", "--size", "wide", "-o", str(out)), "wide")
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_broken_pipe_is_quiet(seed_db: Path, extra: list[str]) -> None:
    """`iofold-tui sql DB "select …" | head -1`: the reader leaves early; no "Broken pipe" line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}
    query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) " \
            "SELECT i, printf('%.200c', 'x') FROM n"
    proc = subprocess.Popen(
        [sys.executable, "-m", "iofold_tui", "sql", str(seed_db), query, "--limit", "50000", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert code in (0, 141) and err == "", (code, err)


def test_run_eval_says_it_replaces_the_stored_counters(seed_db: Path) -> None:
    """Said before the sandbox starts (so also when it then fails), and not for a dry run, which writes
    nothing."""
    dry = invoke("run-eval", str(seed_db), "eval_response_quality_v1", "--dry-run")
    assert "replaces" not in dry.stderr
    run = invoke("run-eval", str(seed_db), "eval_response_quality_v1", "--jobs", "1")
    first = run.stderr.strip().splitlines()[0]
    assert "replaces" in first and "accuracy" in first and "contradiction_count" in first and "undo" in first


def test_export_labels_summary_is_pluralised(seed_db: Path) -> None:
    from _labels_helpers import ES

    from iofold_tui.data.labels.store import LabelStore
    from iofold_tui.data.source.loader import open_source

    history = open_source(seed_db).history_path  # where the CLI looks for this database's labels
    with LabelStore(seed_db, history_path=history) as store:
        store.set_label(ES, "trace_001", "negative")
    result = invoke("export-labels", str(seed_db), "-o", str(seed_db.with_suffix(".patch.sql")))
    assert result.exit_code == 0
    assert result.stderr.startswith("1 label change (1 upsert, 0 deletions) written to ")
