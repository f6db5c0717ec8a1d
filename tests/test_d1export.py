"""The D1 export splitter, loader and cache. Wrangler-produced exports come from the real CLI."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wrangler_tools import WranglerProject, cleanup, temp_project

from iofold_tui.data.errors import SourceError
from iofold_tui.data.paths import schema_dir
from iofold_tui.data.source.export.cache import open_export
from iofold_tui.data.source.export.load import load_export
from iofold_tui.data.source.export.statements import IncompleteInput, Statement, iter_statements


def split(text: str) -> list[Statement]:
    return list(iter_statements(io.BytesIO(text.encode())))


def sqls(text: str) -> list[str]:
    return [s.sql for s in split(text)]


# ---------------------------------------------------------------------------------------------- splitter

def test_quotes_comments_and_identifiers_hide_semicolons() -> None:
    text = ("INSERT INTO \"t;x\" VALUES('a;b', 'it''s; ok', \"q;\"\"\", [b;r], `c;``d`);\n"
            "SELECT 1 -- trailing; comment 'x\n;\n"
            "CREATE TABLE k (a TEXT, -- why; it's here\n  b /* ; ' */ INT);\n")
    out = split(text)
    assert [s.kind for s in out] == ["insert", "select", "create table"]
    assert out[0].name == "t;x"
    assert out[0].sql.endswith("`c;``d`);")
    assert out[1].sql == "SELECT 1 -- trailing; comment 'x\n;"
    assert "-- why; it's here" in out[2].sql and out[2].line == 4  # comments inside CREATE TABLE kept


def test_trigger_body_semicolons_and_case_end() -> None:
    text = ("CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n"
            "  UPDATE t SET a = CASE WHEN NEW.a > 0 THEN 'x;' ELSE 'y' END;\n"
            "  DELETE FROM u WHERE id = NEW.id;\nEND;\nINSERT INTO t VALUES(1);")
    out = split(text)
    assert [s.kind for s in out] == ["create trigger", "insert"]
    assert out[0].sql.endswith("END;") and out[0].name == "tr"
    assert out[1].line == 5


def test_multiline_strings_crlf_blank_lines_and_line_numbers() -> None:
    text = ("\r\n\r\n-- header\r\nINSERT INTO t VALUES('a\r\nb;\r\n''c');\r\n\r\n"
            "INSERT INTO t VALUES(2);INSERT INTO t VALUES(3);")
    out = split(text)
    assert [s.line for s in out] == [4, 8, 8]
    assert out[0].sql == "INSERT INTO t VALUES('a\r\nb;\r\n''c');"  # CRLF inside the literal untouched
    assert [s.terminated for s in out] == [True, True, True]  # no trailing newline is fine


def test_statement_without_semicolon_at_end_is_flagged() -> None:
    out = split("CREATE VIEW v AS SELECT 1;\nINSERT INTO t VALUES(1)\n  \n")
    assert out[-1].sql == "INSERT INTO t VALUES(1)" and out[-1].terminated is False and out[-1].line == 2


def test_trailing_comments_are_not_statements() -> None:
    assert sqls("SELECT 1;\n-- the end\n/* unclosed comment at EOF") == ["SELECT 1;"]


@pytest.mark.parametrize(("text", "line", "construct"), [
    ("SELECT 1;\nINSERT INTO t VALUES('abc\ndef", 2, "a string literal opened at line 2"),
    ("SELECT 1;\n\nINSERT INTO \"t VALUES(1);\n", 3, "a quoted identifier opened at line 3"),
])
def test_input_ending_inside_a_string_names_the_line(text: str, line: int, construct: str) -> None:
    with pytest.raises(IncompleteInput) as err:
        split(text)
    assert err.value.line == line and construct in str(err.value)


def test_huge_line_and_kinds() -> None:
    big = "x;'" * 4_000_000  # 12 MB of quotes and semicolons inside one literal
    quoted = big.replace(chr(39), chr(39) * 2)
    text = f"PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO \"big\" VALUES('{quoted}');\nDROP TABLE t;"
    out = split(text)
    assert [(s.kind, s.name) for s in out] == [("pragma", "defer_foreign_keys"), ("insert", "big"),
                                               ("drop", None)]
    assert len(out[1].sql) == len(big) + 4_000_000 + len("INSERT INTO \"big\" VALUES('');")


def test_text_streams_and_lists_of_lines_work_too() -> None:
    text = "INSERT INTO t VALUES('a\nb');\nSELECT 2;\n"
    assert [s.sql for s in iter_statements(io.StringIO(text, newline=""))] == sqls(text)
    assert [s.sql for s in iter_statements(text.splitlines(keepends=True))] == sqls(text)


_ALPHABET = "ab ;'\"-*/\n\r\t()[]`é😀"
_chars = st.sampled_from(list(_ALPHABET))
_line_chars = st.sampled_from([c for c in _ALPHABET if c not in "\r\n"])
_token = st.one_of(
    st.sampled_from(["x", "42", "-", "/", "(", ")", ",", "CASE", "END", "||"]),
    st.text(_chars, max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.text(_chars, max_size=8).map(lambda s: '"' + s.replace('"', '""') + '"'),
    st.text(_line_chars, max_size=8).map(lambda s: "--" + s + "\n"),
    st.text(_chars, max_size=8).filter(lambda s: "*/" not in s and not s.endswith("*"))
    .map(lambda s: "/*" + s + "*/"),
)
_stmt = st.lists(_token, max_size=8).map(lambda toks: "SELECT " + " ".join(toks) + ";")


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(_stmt, min_size=1, max_size=6), st.sampled_from(["\n", " ", "\r\n", "", "\n\n"]))
def test_splitter_matches_generated_statements(statements: list[str], sep: str) -> None:
    out = split(sep.join(statements))
    assert [s.sql for s in out] == statements
    assert all(sqlite3.complete_statement(s.sql) for s in out)


# ---------------------------------------------------------------------------------------------- loader

def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


SMALL = ("PRAGMA defer_foreign_keys=TRUE;\n"
         "CREATE TABLE t (id TEXT PRIMARY KEY, v REAL);\n"
         "INSERT INTO \"t\" VALUES('a',1);\n"
         "INSERT INTO \"t\" VALUES('b',Infinity);\n"
         "INSERT INTO \"t\" VALUES('c',2.5);\n"
         "INSERT INTO \"t\" VALUES('a',3);\n"
         "CREATE INDEX ix ON t(v);")


def test_rejected_rows_are_reported_with_their_line_and_the_rest_loads(tmp_path: Path) -> None:
    report = load_export(write(tmp_path / "e.sql", SMALL), tmp_path / "w.sqlite")
    assert [(e.line, "Infinity" in e.message) for e in report.errors] == [(4, True), (6, False)]
    assert "UNIQUE" in report.errors[1].message and report.error_count == 2
    conn = sqlite3.connect(tmp_path / "w.sqlite")
    # The failing batch was retried row by row: no partial rows, nothing lost.
    assert conn.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [("a", 1.0), ("c", 2.5)]
    assert report.rows == {"t": 2} and report.indexes == 1 and report.tables == ["t"]
    assert not list(tmp_path.glob("*.loading-*"))


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "empty file"),
    (b"   \n\n", "empty file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    (b"SQLite format 3\x00" + b"\x00" * 100, "SQLite database"),
    (b"# My notes\n\nCREATE TABLE is explained below;\n", "not a D1/SQL export"),
    (b"Create a table for me please;\n", "not a D1/SQL export"),
    (b"\xff\xfe\x41\x00\x42\x00", "not a D1/SQL export"),
])
def test_not_an_export(tmp_path: Path, content: bytes, problem: str) -> None:
    src = tmp_path / "db.sql"
    src.write_bytes(content)
    with pytest.raises(SourceError) as err:
        load_export(src, tmp_path / "w.sqlite")
    assert problem in str(err.value) and str(src) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "w.sqlite").exists()


def test_data_only_export_stops_early_and_leaves_nothing_behind(tmp_path: Path) -> None:
    rows = "".join(f"INSERT INTO \"traces\" VALUES('t{i}','[]');\n" for i in range(5000))
    threads = threading.active_count()
    with pytest.raises(SourceError, match=r'data-only export: no CREATE TABLE for "traces"'):
        load_export(write(tmp_path / "e.sql", "PRAGMA defer_foreign_keys=TRUE;\n" + rows),
                    tmp_path / "w.sqlite")
    assert threading.active_count() == threads  # the splitting thread was stopped
    assert list(tmp_path.iterdir()) == [tmp_path / "e.sql"]


def test_bom_sqlite_sequence_and_comment_only_files(tmp_path: Path) -> None:
    text = ("\ufeffPRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (a);\nDELETE FROM sqlite_sequence;\n"
            "INSERT INTO t VALUES(1);")
    report = load_export(write(tmp_path / "e.sql", text), tmp_path / "w.sqlite")
    assert report.error_count == 0 and report.rows == {"t": 1}
    with pytest.raises(SourceError, match="empty export"):
        load_export(write(tmp_path / "c.sql", "-- nothing\n/* here */\n"), tmp_path / "w2.sqlite")


def test_truncated_inside_a_statement(tmp_path: Path) -> None:
    cut = SMALL[: SMALL.index("2.5")]  # ends in the middle of line 5, outside any string
    with pytest.raises(SourceError, match=r"truncated export: .*line 5"):
        load_export(write(tmp_path / "e.sql", cut), tmp_path / "w.sqlite")
    assert not (tmp_path / "w.sqlite").exists()


def test_refused_and_ignored_statements(tmp_path: Path) -> None:
    evil = tmp_path / "evil.db"
    text = (f"CREATE TABLE t (a);\nATTACH DATABASE '{evil}' AS x;\nCREATE TABLE x.t (a);\n"
            "PRAGMA writable_schema=ON;\nBEGIN TRANSACTION;\nINSERT INTO t VALUES(1);\nCOMMIT;\n"
            f"VACUUM INTO '{tmp_path / 'copy.db'}';")
    report = load_export(write(tmp_path / "e.sql", text), tmp_path / "w.sqlite")
    assert not evil.exists() and not (tmp_path / "copy.db").exists()
    assert [e.line for e in report.errors] == [2, 3, 8]
    assert report.rows == {"t": 1} and any("writable_schema" in w for w in report.warnings)


def test_invalid_utf8_rejects_only_its_row(tmp_path: Path) -> None:
    src = tmp_path / "e.sql"
    src.write_bytes(b"CREATE TABLE t (a);\nINSERT INTO \"t\" VALUES('ok');\n"
                    b"INSERT INTO \"t\" VALUES('bad \xff\xfe');\n"
                    b"INSERT INTO \"t\" VALUES('caf\xc3\xa9');")
    report = load_export(src, tmp_path / "w.sqlite")
    assert [(e.line, e.message) for e in report.errors] == [(3, "invalid UTF-8 in statement")]
    assert report.rows == {"t": 2}


def test_progress_reaches_the_total(tmp_path: Path) -> None:
    src = write(tmp_path / "e.sql", SMALL)
    calls: list[tuple[int, int]] = []
    load_export(src, tmp_path / "w.sqlite", progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (src.stat().st_size, src.stat().st_size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_cache_reuses_the_working_copy_until_the_export_changes(tmp_path: Path) -> None:
    src = write(tmp_path / "e.sql", SMALL)
    before = src.read_bytes()
    db1, rep1 = open_export(src)
    st1 = db1.stat()
    db2, rep2 = open_export(src)
    st2 = db2.stat()
    assert db2 == db1 and (st2.st_ino, st2.st_mtime_ns) == (st1.st_ino, st1.st_mtime_ns)
    assert rep2.from_cache and not rep1.from_cache
    assert rep2.rows == rep1.rows and [e.line for e in rep2.errors] == [4, 6]
    assert src.read_bytes() == before  # never modified
    os.utime(src, ns=(st1.st_atime_ns, st1.st_mtime_ns + 10**9))  # "edited": same bytes, new mtime
    db3, rep3 = open_export(src)
    assert db3 != db1 and not rep3.from_cache and not db1.exists()  # the stale copy was evicted


# ---------------------------------------------------------------------------------------------- wrangler

HAZARD_CODE = 'def check(trace: dict) -> tuple[bool, str]:\n    return True, "line1\\nline2"\n'
ROWS = """
INSERT INTO workspaces (id, name) VALUES ('ws_1', 'Main ''workspace''');
INSERT INTO integrations (id, workspace_id, platform, name, api_key_encrypted, config)
  VALUES ('int_1', 'ws_1', 'langfuse', 'Langfuse', 'enc:abc', '{"region": "eu"}');
INSERT INTO traces
  (id, workspace_id, integration_id, trace_id, source, timestamp, steps, input_preview, step_count) VALUES
 ('tr_nl', 'ws_1', 'int_1', 'ext-1', 'langfuse', '2025-01-01 10:00:00',
  '[{"step_id": "s1",' || char(10) || ' "output": {"response": "line1\\nline2"}}]',
  'multi' || char(10) || 'line; ''q''', 1),
 ('tr_ctl', 'ws_1', 'int_1', 'ext-2', 'langfuse', '2025-01-01 11:00:00', '[]',
  'cr' || char(13) || 'lf' || char(13) || char(10) || 'esc' || char(27) || '[31mred tab' || char(9)
  || 'x 😀 数据', 0),
 ('tr_big', 'ws_1', 'int_1', 'ext-3', 'langfuse', '2025-01-02 09:30:00',
  '[{"output": "'
  || replace(replace(hex(zeroblob(700000)), '0', 'x'), 'xxxxxxxxxx', 'it''s;' || char(10) || 'ok')
  || '"}]',
  'big', 1);
INSERT INTO eval_sets (id, workspace_id, name) VALUES ('es_1', 'ws_1', 'response-quality');
INSERT INTO feedback (id, eval_set_id, trace_id, rating, notes) VALUES
 ('fb_1', 'es_1', 'tr_nl', 'positive', NULL),
 ('fb_2', 'es_1', 'tr_ctl', 'negative', 'bad; very' || char(10) || 'bad');
INSERT INTO evals (id, eval_set_id, name, version, code, model_used, accuracy) VALUES
 ('ev_hazard', 'es_1', 'check', 1, 'HAZARD', 'model', 0.875),
 ('ev_plain', 'es_1', 'check2', 2, 'def check2(trace):' || char(10) || '    return False, ''no''',
  'model', 1.0);
INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, execution_time_ms) VALUES
 ('ex_1', 'ev_hazard', 'tr_nl', 1, 'ok', 12),
 ('ex_2', 'ev_hazard', 'tr_ctl', 0, 'tab' || char(9) || 'reason', 7);
CREATE TABLE blobs (id TEXT PRIMARY KEY, data BLOB, score REAL);
INSERT INTO blobs VALUES ('b1', X'00FF10E29C93', 0.1), ('b2', NULL, -2.5e-7), ('b3', X'', 123456.789);
CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE,
  applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);
INSERT INTO d1_migrations (name) VALUES ('0001_initial_schema.sql');
CREATE TRIGGER evals_touch AFTER UPDATE OF code ON evals BEGIN
  UPDATE evals SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.id; SELECT 1;
END;
""".replace("'HAZARD'", "'" + HAZARD_CODE.replace("\n", "' || char(10) || '") + "'")


def d1_roundtrip(value: object) -> object:
    """What wrangler's export does to a text value (spec §6): literal \\n / \\r become real ones too."""
    if not isinstance(value, str):
        return value
    out = value
    if "\r" in value:
        out = out.replace("\\r", "\r")
    if "\n" in value:
        out = out.replace("\\n", "\n")
    return out


class Exports:
    def __init__(self, project: WranglerProject, folder: Path) -> None:
        self.project = project
        self.full = project.export(folder / "full.sql")
        self.no_data = project.export(folder / "no-data.sql", no_data=True)
        self.traces_only = project.export(folder / "traces.sql", table="traces")
        self.no_schema = project.export(folder / "no-schema.sql", no_schema=True)
        self.truth = project.database_file()  # wrangler's own file, read in place (rows in -wal)


@pytest.fixture(scope="module")
def exports() -> Iterator[Exports]:
    project, root = temp_project()
    try:
        data = root / "data.sql"
        data.write_text((schema_dir() / "schema.sql").read_text() + ROWS)
        project.execute_file(data)
        yield Exports(project, root)
    finally:
        cleanup(root)


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
    finally:
        conn.close()


def _objects(db: Path, kind: str) -> set[str]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        sql = ("SELECT name FROM sqlite_master WHERE type = ? AND sql IS NOT NULL "
               "AND substr(name, 1, 4) != '_cf_' AND substr(name, 1, 7) != 'sqlite_'")
        return {r[0] for r in conn.execute(sql, (kind,))}
    finally:
        conn.close()


@pytest.mark.wrangler
def test_full_export_round_trips_every_value(exports: Exports) -> None:
    db, report = open_export(exports.full)
    truth = exports.truth
    assert report.error_count == 0, report.errors
    for kind in ("table", "index", "view", "trigger"):
        assert _objects(db, kind) == _objects(truth, kind), kind
    for table in sorted(_objects(truth, "table")):
        expected = [tuple(d1_roundtrip(v) for v in row) for row in _rows(truth, table)]
        assert _rows(db, table) == expected, table
        assert report.rows.get(table, 0) == len(expected), table
    big = _rows(db, "traces")[0]
    assert big[0] == "tr_big" and len(big[7]) > 1_000_000 and big[7].count("it's;\nok") == 140_000
    assert report.indexes == len(_objects(truth, "index")) and report.views == ["eval_comparison"]
    assert report.triggers == 1 and set(report.internal_tables) >= {"d1_migrations", "sqlite_sequence"}
    conn = sqlite3.connect(db)
    # JavaScript numbers: 1.0 is written as `1`, the REAL column makes it a float again.
    sql = "SELECT typeof(accuracy), accuracy FROM evals WHERE id = 'ev_plain'"
    assert conn.execute(sql).fetchone() == ("real", 1.0)
    conn.close()


@pytest.mark.wrangler
def test_d1_newline_bug_is_warned_about(exports: Exports) -> None:
    db, report = open_export(exports.full)
    code = dict((r[0], r[6]) for r in _rows(db, "evals"))
    assert code["ev_hazard"] == HAZARD_CODE.replace("\\n", "\n")  # wrangler altered it (the known bug)
    warning = next(w for w in report.warnings if "does not parse as Python" in w)
    assert "ev_hazard" in warning and "ev_plain" not in warning
    assert any("ev_hazard" in line for line in report.summary_lines())


@pytest.mark.wrangler
def test_schema_only_export(exports: Exports) -> None:
    db, report = open_export(exports.no_data)
    assert not report.has_data and report.has_schema and report.error_count == 0
    assert "traces" in report.tables and report.views == ["eval_comparison"] and report.indexes > 20
    assert _rows(db, "traces") == []
    assert any("schema only" in line for line in report.summary_lines())


@pytest.mark.wrangler
def test_single_table_export(exports: Exports) -> None:
    db, report = open_export(exports.traces_only)
    assert report.tables == ["traces"] and report.rows == {"traces": 3} and report.indexes == 0
    assert [r[0] for r in _rows(db, "traces")] == ["tr_big", "tr_ctl", "tr_nl"]


@pytest.mark.wrangler
def test_data_only_export_is_refused(exports: Exports) -> None:
    with pytest.raises(SourceError, match=r"data-only export: .*without --no-schema"):
        open_export(exports.no_schema)


@pytest.mark.wrangler
def test_infinity_line_is_reported_and_the_rest_loads(exports: Exports, tmp_path: Path) -> None:
    lines = exports.full.read_text(encoding="utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith('INSERT INTO "traces"')) + 1
    lines.insert(at, "INSERT INTO \"traces\" VALUES('tr_inf','ws_1','int_1','ext-9','langfuse','2025-01-03',"
                     "NULL,'[]',NULL,NULL,Infinity,0,'2025-01-03');")
    src = tmp_path / "inf.sql"
    src.write_text("\n".join(lines), encoding="utf-8")
    report = load_export(src, tmp_path / "w.sqlite")
    assert [(e.line, "Infinity" in e.message) for e in report.errors] == [(at + 1, True)]
    assert report.rows["traces"] == 3 and report.rows["feedback"] == 2


@pytest.mark.wrangler
def test_truncated_wrangler_export_names_the_line(exports: Exports, tmp_path: Path) -> None:
    data = exports.full.read_bytes()
    cut = data.index(b"it''s;") + 1000  # inside the 1 MB string literal
    src = tmp_path / "cut.sql"
    src.write_bytes(data[:cut])
    line = data[:cut].count(b"\n") + 1
    with pytest.raises(SourceError,
                       match=rf"truncated export: file ends inside a string literal opened at line {line}"):
        open_export(src)
