"""The class test for hostile values: any SQLite type, any encoding, in any column the app reads.

The database is schema/schema.sql + schema/seed.sql with NOT NULL dropped, CHECK constraints ignored and
foreign keys off, so every column can hold what SQLite itself allows: NULL, huge and negative integers,
inf/nan, text with invalid UTF-8 (``CAST(X'..' AS TEXT)``), lone surrogates (CESU-8 bytes), controls,
bidi overrides, very long text, BLOBs. Every pane is rendered headlessly (the trace detail too) and the
headless commands run, and none may raise.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SCHEMA, SEED
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from iofold_tui.cli import main
from iofold_tui.data.source.loader import open_source
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes import PANES
from iofold_tui.ui.screenshot import settle


class RawText(bytes):
    """Bytes written as TEXT (``CAST(? AS TEXT)``): invalid UTF-8 / CESU-8 surrogates stored as text."""


# One value of every kind SQLite can hold, and the hostile texts of each kind.
KINDS: dict[str, object] = {
    "null": None,
    "huge_int": 2**63 - 1,
    "negative_int": -(2**63),
    "inf": float("inf"),
    "nan": float("nan"),
    "invalid_utf8": RawText(b"Hello\xff\xfe world"),
    "lone_surrogate": RawText(b"a\xed\xa0\x80b"),
    "controls_bidi": "ctrl\x00\x07\x1b[31m\x85\x9b\u202eevil\u202c\u061c\u200b\u2066x\u2069\ufeff\U000e0001",
    "long": "long " * 20_000,
    "blob": b"\x00\x01\xff binary",
}

_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "true",
            "yes",
            "2",
            "-1",
            "1e999",
            "NaN",
            "2025-13-45",
            "[1, 2",
            '{"a":',
            "[]",
            "null",
            '[1, "x", null, [2]]',
            "positive",
            "negative",
            "neutral",
            "running",
            "import",
        ]
    ),
)
VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.binary(max_size=24).map(RawText),
    st.binary(max_size=24),
    st.sampled_from(list(KINDS.values())),
)


COPIES = len(KINDS)  # every table gets at least this many rows, so every column can hold every kind


def _template(folder: Path) -> tuple[Path, dict[str, list[str]]]:
    """schema.sql (NOT NULL and UNIQUE dropped: SQLite stores anything in any column) + seed.sql, every
    table's rows copied up to ``COPIES`` rows so one database can hold every kind in every column."""
    path = folder / "template.sqlite"
    if not path.exists():
        schema = re.sub(r"\bNOT NULL\b", "", SCHEMA.read_text())
        schema = re.sub(r",\s*UNIQUE\s*\([^)]*\)", "", schema)
        schema = re.sub(r"\bUNIQUE\b", "", schema)
        conn = sqlite3.connect(path)
        conn.executescript(schema)
        conn.executescript(SEED.read_text())
        for table, cols in _columns(conn).items():
            others = ", ".join(f'"{c}"' for c in cols if c != "id")
            for n in range(COPIES):
                if conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] >= COPIES:
                    break
                conn.execute(
                    f'INSERT INTO "{table}" (id, {others}) SELECT id || \'_copy{n}\', {others} FROM "{table}"'
                )
        conn.commit()
        conn.close()
    conn = sqlite3.connect(path)
    columns = _columns(conn)
    conn.close()
    return path, columns


def _columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')] for t in tables}


def _is_key(column: str) -> bool:
    return column == "id" or column.endswith("_id")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    return _template(tmp_path_factory.mktemp("fuzz"))


def _write(template: Path, target: Path, writes: list[tuple[str, str, int, object]]) -> Path:
    """Copy the template and apply ``(table, column, row, value)`` (row -1: every row)."""
    shutil.copyfile(template, target)
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA ignore_check_constraints = ON")
    for table, column, row, value in writes:
        param = "CAST(? AS TEXT)" if isinstance(value, RawText) else "?"
        arg = bytes(value) if isinstance(value, bytes) else value
        where = (
            ""
            if row < 0
            else f' WHERE rowid = (SELECT rowid FROM "{table}" ORDER BY rowid LIMIT 1 OFFSET {row})'
        )
        conn.execute(f'UPDATE OR IGNORE "{table}" SET "{column}" = {param}{where}', (arg,))
    conn.commit()
    conn.close()
    return target


async def _render_all(path: Path, size: tuple[int, int] = (100, 30)) -> None:
    """Every pane, then the detail of a few traces (raw view too); Textual re-raises any crash."""
    from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

    app = IofoldApp(open_source(path), watch_interval=0)
    async with app.run_test(headless=True, size=size) as pilot:
        await settle(app, pilot)
        for spec in PANES:
            app.switch_mode(spec.mode)
            await settle(app, pilot)
            app.export_screenshot()
        app.switch_mode("traces")
        await settle(app, pilot)
        with sqlite3.connect(path) as conn:
            conn.text_factory = bytes
            ids = [
                r[0]
                for r in conn.execute("SELECT id FROM traces WHERE id IS NOT NULL ORDER BY rowid LIMIT 2")
            ]
        for trace_id in ids:
            screen = TraceDetailScreen(
                trace_id.decode("utf-8", "replace") if isinstance(trace_id, bytes) else str(trace_id)
            )
            await app.push_screen(screen)
            await settle(app, pilot)
            await pilot.press("r")
            await settle(app, pilot)
            app.export_screenshot()
            app.pop_screen()
            await settle(app, pilot)


def _run_cli(path: Path) -> None:
    runner = CliRunner()
    for args in (["info", str(path)], ["info", "--json", str(path)], ["overview", "--json", str(path)],
                 ["overview", str(path)], ["stats", "--json", str(path)], ["stats", str(path)],
                 ["sql", str(path), "SELECT * FROM traces"], ["sql", str(path), "SELECT * FROM integrations"],
                 ["sql", "--json", str(path), "SELECT * FROM feedback"]):
        result = runner.invoke(main, args, catch_exceptions=True)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        out = result.stdout
        assert "Traceback" not in out + result.stderr, args
        assert not re.search(
            "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u061c\u200b\ufeff]", out
        ), args
        if "--json" in args and result.exit_code == 0:
            json.loads(out)


def test_every_kind_in_every_column(template: tuple[Path, dict[str, list[str]]], tmp_path: Path) -> None:
    """Row r of column c holds kind (r + c) mod K: every column of every table holds every kind in one
    database (ids and foreign keys stay intact here so the joins still find rows; see the next test)."""
    base, columns = template
    kinds = list(KINDS.values())
    writes = [
        (t, c, r, kinds[(r + i) % len(kinds)])
        for t, cols in columns.items()
        for i, c in enumerate(cols)
        if not _is_key(c)
        for r in range(COPIES)
    ]
    path = _write(base, tmp_path / "every.sqlite", writes)
    asyncio.run(_render_all(path))
    _run_cli(path)


# The kinds rendered through every pane on their own (all of them go through the headless commands).
RENDERED = ("null", "invalid_utf8", "blob")


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_kind_in_every_column(
    kind: str, template: tuple[Path, dict[str, list[str]]], tmp_path: Path
) -> None:
    """Every column (keys too, on some rows) of every table holds the same kind."""
    base, columns = template
    writes = [(t, c, -1, KINDS[kind]) for t, cols in columns.items() for c in cols if not _is_key(c)]
    writes += [
        (t, c, r, KINDS[kind]) for t, cols in columns.items() for c in cols if _is_key(c) for r in (1, 3)
    ]
    path = _write(base, tmp_path / f"{kind}.sqlite", writes)
    _run_cli(path)
    if kind in RENDERED:
        asyncio.run(_render_all(path))


# No shrinking: each example renders every pane (seconds); the unshrunk example is printed, and it is enough.
@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_random_values_in_random_columns(data: st.DataObject, template: tuple[Path, dict[str, list[str]]],
                                         tmp_path: Path) -> None:
    base, columns = template
    cells = [(t, c) for t, cols in columns.items() for c in cols]
    writes = data.draw(st.lists(st.tuples(st.sampled_from(cells), st.integers(-1, COPIES - 1), VALUES),
                                min_size=5, max_size=80))
    path = _write(base, tmp_path / "random.sqlite", [(t, c, row, v) for (t, c), row, v in writes])
    asyncio.run(_render_all(path))
    _run_cli(path)
