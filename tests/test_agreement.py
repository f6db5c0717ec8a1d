"""Agreement between annotators (issue 18): figures checked against hand-computed values, degenerate cases
(no overlap, one class only, a single trace, nobody labelled all), copies attached read-only, label files,
eval-version agreement equal to the matrix statistics, keyset-paged disagreements, and the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iofold_tui.cli import main
from iofold_tui.data.labels.agreement_open import open_agreement
from iofold_tui.data.labels.kappa import cohen, fleiss
from iofold_tui.data.matrix.stats import compute_stats
from iofold_tui.data.source.loader import open_source
from tests._labels_helpers import ES2, add_traces
from tests.conftest import build_db

P, N, U = "positive", "negative", "neutral"


def make_copy(path: Path, labels: dict[str, str], n_traces: int = 12) -> Path:
    """A seeded database with traces tx_00000.. and ``labels`` (trace index -> rating) in ES2 only."""
    build_db(path)
    ids = add_traces(path, n_traces)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM feedback WHERE eval_set_id = ?", (ES2,))
        conn.executemany("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES (?, ?, ?, ?)",
                         ((f"fb_{t}", ES2, ids[int(t)], r) for t, r in labels.items()))
    conn.close()
    return path


def tid(i: int) -> str:
    return f"tx_{i:05d}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report_for(source: Path, *others: Path) -> dict:
    opened = open_source(source, read_only=True)
    with open_agreement(opened, [str(o) for o in others]) as session:
        return session.report(ES2)["eval_sets"][0]


# ---------------------------------------------------------------- the formulas


def test_cohen_hand_computed() -> None:
    # 4 both positive, 1 P/N, 1 N/P, 4 both negative: po = .8, pe = .5, kappa = .6
    table = {P: {P: 4, N: 1, U: 0}, N: {P: 1, N: 4, U: 0}, U: {P: 0, N: 0, U: 0}}
    percent, kappa = cohen(table)
    assert percent.value == pytest.approx(0.8)
    assert kappa.value == pytest.approx(0.6)


def test_cohen_three_classes_hand_computed() -> None:
    # rows A, columns B. n = 20; agree 6 + 5 + 2 = 13 -> po = .65
    # A marginals P 9, N 7, U 4; B marginals P 8, N 8, U 4 -> pe = (72 + 56 + 16) / 400 = .36
    table = {P: {P: 6, N: 2, U: 1}, N: {P: 1, N: 5, U: 1}, U: {P: 1, N: 1, U: 2}}
    percent, kappa = cohen(table)
    assert percent.value == pytest.approx(0.65)
    assert kappa.value == pytest.approx(0.29 / 0.64)  # 0.453125


@pytest.mark.parametrize(("table", "reason"), [
    ({}, "no overlap"),
    ({P: {P: 1}}, "a single trace"),
    ({P: {P: 5}}, "one class only"),
    ({N: {N: 3}}, "one class only"),
])
def test_cohen_undefined(table: dict, reason: str) -> None:
    _, kappa = cohen(table)
    assert kappa.value is None
    assert reason in (kappa.reason or "")


def test_cohen_single_trace_percent_is_defined() -> None:
    percent, kappa = cohen({P: {N: 1}})
    assert percent.value == 0.0
    assert kappa.value is None


def test_cohen_total_disagreement_is_negative() -> None:
    _, kappa = cohen({P: {N: 3}, N: {P: 3}})
    assert kappa.value == pytest.approx(-1.0)


def test_fleiss_hand_computed() -> None:
    # PPP, PPN, NNN, NNP: P_i = 1, 1/3, 1, 1/3 -> mean 2/3; p_P = p_N = .5 -> Pe = .5; kappa = 1/3
    counts = [((3, 0, 0), 1), ((2, 1, 0), 1), ((0, 3, 0), 1), ((1, 2, 0), 1)]
    traces, unanimous, kappa = fleiss(counts, 3)
    assert traces == 4
    assert unanimous.value == pytest.approx(0.5)
    assert kappa.value == pytest.approx(1 / 3)


@pytest.mark.parametrize(("counts", "reason"), [
    ([], "no trace labelled by all"),
    ([((3, 0, 0), 1)], "a single trace"),
    ([((3, 0, 0), 4)], "one class only"),
])
def test_fleiss_undefined(counts: list, reason: str) -> None:
    _, _, kappa = fleiss(counts, 3)
    assert kappa.value is None
    assert reason in (kappa.reason or "")


# ---------------------------------------------------------------- on databases


def test_two_copies_hand_computed(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": P, "2": P, "3": P, "4": P, "5": N, "6": N, "7": N,
                                          "8": N, "9": N, "10": U})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": P, "2": P, "3": P, "4": N, "5": P, "6": N, "7": N,
                                          "8": N, "9": N, "11": P})
    before = (digest(a), digest(b))
    s = report_for(a, b)
    assert [x["labelled"] for x in s["annotators"]] == [11, 11]
    pair = s["pairs"][0]
    assert pair["overlap"] == 10 and pair["agree"] == 8
    assert pair["percent_agreement"] == pytest.approx(0.8)
    assert pair["cohens_kappa"] == pytest.approx(0.6)
    assert pair["confusion"][P] == {P: 4, N: 1, U: 0}
    assert pair["confusion"][N] == {P: 1, N: 4, U: 0}
    assert s["fleiss"] is None  # two annotators: Cohen's
    assert s["disagreements"] == 2
    assert (digest(a), digest(b)) == before  # read only, nothing added to either file


def test_no_overlap_and_one_class(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": P})
    b = make_copy(tmp_path / "b.sqlite", {"2": P, "3": N})
    c = make_copy(tmp_path / "c.sqlite", {"0": P, "1": P})
    pair = report_for(a, b)["pairs"][0]
    assert pair["overlap"] == 0
    assert pair["cohens_kappa"] is None and "no overlap" in pair["undefined"]["cohens_kappa"]
    assert pair["percent_agreement"] is None
    pair = report_for(a, c)["pairs"][0]
    assert pair["percent_agreement"] == 1.0
    assert pair["cohens_kappa"] is None and "one class only" in pair["undefined"]["cohens_kappa"]


def test_single_trace(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P})
    b = make_copy(tmp_path / "b.sqlite", {"0": N})
    pair = report_for(a, b)["pairs"][0]
    assert pair["overlap"] == 1 and pair["percent_agreement"] == 0.0
    assert "a single trace" in pair["undefined"]["cohens_kappa"]


def test_three_copies_fleiss_hand_computed(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": P, "2": N, "3": N, "4": P})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": P, "2": N, "3": N})
    c = make_copy(tmp_path / "c.sqlite", {"0": P, "1": N, "2": N, "3": P, "5": N})
    s = report_for(a, b, c)
    f = s["fleiss"]
    assert f["annotators"] == 3 and f["traces"] == 4  # trace 4 and 5 are not labelled by all
    assert f["fleiss_kappa"] == pytest.approx(1 / 3)
    assert f["unanimous"] == pytest.approx(0.5)
    assert len(s["pairs"]) == 3
    assert s["disagreements"] == 2


def test_invalid_ratings_and_other_sets_are_left_out(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": N, "2": P})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": N})
    conn = sqlite3.connect(b)
    with conn:  # a rating outside the CHECK constraint (a database without it) and a blob
        conn.execute("PRAGMA ignore_check_constraints = 1")
        conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) "
                     "VALUES ('x', ?, ?, 'POSITIVE')", (ES2, tid(2)))
        conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) VALUES ('y', ?, ?, X'00ff')",
                     (ES2, tid(3)))
    conn.close()
    s = report_for(a, b)
    assert s["annotators"][1]["labelled"] == 2
    assert s["pairs"][0]["overlap"] == 2


def test_label_file_annotator(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": P, "2": N})
    csv_file = tmp_path / "bob.csv"
    csv_file.write_text("eval_set_id,trace_id,action,rating,notes,changed_at,feedback_id,annotator\n"
                        f"{ES2},{tid(0)},upsert,positive,,,,bob\n{ES2},{tid(1)},upsert,negative,\"a,b\",,,bob\n"
                        f"{ES2},{tid(2)},delete,,,,,bob\n")
    jsonl = tmp_path / "carol.jsonl"
    jsonl.write_text(json.dumps({"eval_set_id": ES2, "trace_id": tid(2), "rating": "negative"}) + "\n")
    opened = open_source(a, read_only=True)
    with open_agreement(opened, [str(csv_file), str(jsonl)]) as session:
        s = session.report(ES2)["eval_sets"][0]
    names = [x["name"] for x in s["annotators"]]
    assert names == ["a.sqlite", "bob (bob.csv)", "carol.jsonl"]
    assert s["annotators"][1]["labelled"] == 2  # the delete row is "no label"
    first = s["pairs"][0]
    assert (first["overlap"], first["agree"]) == (2, 1)


def test_d1_export_copy_is_attached_through_its_working_copy(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": N})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": P})
    dump = tmp_path / "b.sql"
    conn = sqlite3.connect(b)
    dump.write_text("PRAGMA defer_foreign_keys=TRUE;\n" + "\n".join(
        line for line in conn.iterdump() if line not in ("BEGIN TRANSACTION;", "COMMIT;")) + "\n")
    conn.close()
    before = digest(dump)
    pair = report_for(a, dump)["pairs"][0]
    assert (pair["overlap"], pair["agree"]) == (2, 1)
    assert digest(dump) == before


def test_eval_version_agreement_matches_the_matrix_stats(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {str(i): (P if i % 3 else N) for i in range(10)} | {"10": U})
    conn = sqlite3.connect(a)
    with conn:
        conn.execute("INSERT INTO evals (id, eval_set_id, name, version, code, model_used) "
                     "VALUES ('ev1', ?, 'e', 1, 'x', 'm')", (ES2,))
        rows = []
        for i in range(11):
            result, error = (1 if i % 2 else 0), None
            if i == 4:
                error = "boom"
            if i == 5:
                result = 2  # invalid
            rows.append((f"x{i}", "ev1", tid(i), result, "r", 1, error))
        conn.executemany("INSERT INTO eval_executions (id, eval_id, trace_id, result, reason, "
                         "execution_time_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    s = report_for(a, make_copy(tmp_path / "b.sqlite", {"0": P}))
    mine = next(v for v in s["versions"] if v["annotator"] == "a.sqlite")
    ro = sqlite3.connect(f"{a.as_uri()}?mode=ro", uri=True)
    stats = compute_stats(ro, ES2)[0]
    ro.close()
    assert mine["n"] == stats.n and (mine["tp"], mine["fp"], mine["fn"], mine["tn"]) == \
        (stats.tp, stats.fp, stats.fn, stats.tn)
    assert mine["percent_agreement"] == stats.accuracy.value
    assert mine["cohens_kappa"] == stats.cohens_kappa.value
    assert mine["excluded"] == {"neutral": 1, "errors": 1, "invalid_result": 1, "not_run": 0}
    theirs = next(v for v in s["versions"] if v["annotator"] == "b.sqlite")
    assert theirs["n"] == 1 and theirs["tn"] == 0 and theirs["fn"] == 1  # positive vs a fail (result 0)


def test_disagreements_keyset_pages(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {str(i): P for i in range(30)}, n_traces=30)
    b = make_copy(tmp_path / "b.sqlite", {str(i): (N if i % 2 else P) for i in range(30)}, n_traces=30)
    c = make_copy(tmp_path / "c.sqlite", {str(i): (U if i % 5 == 0 else P) for i in range(30)}, n_traces=30)
    opened = open_source(a, read_only=True)
    with open_agreement(opened, [str(b), str(c)]) as session:
        expected = sorted({tid(i) for i in range(30) if i % 2 or i % 5 == 0})
        assert session.count_disagreements(ES2) == len(expected)
        seen, after = [], None
        while True:
            page = session.disagreements(ES2, after=after, limit=4)
            seen.extend(d.trace_id for d in page)
            if len(page) < 4:
                break
            after = page[-1].trace_id
        assert seen == expected
        first = session.disagreements(ES2, limit=1)[0]
        assert first.ratings == {"a.sqlite": P, "b.sqlite": P, "c.sqlite": U}


# ---------------------------------------------------------------- CLI


def invoke(*args: str):  # -> a click Result
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_json_and_text(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": P, "2": N})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": N, "2": N})
    result = invoke("agreement", str(a), str(b), "--eval-set", "extra", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    pair = data["eval_sets"][0]["pairs"][0]
    assert (pair["overlap"], pair["agree"]) == (3, 2)
    result = invoke("agreement", str(a), str(b), "--eval-set", ES2)
    assert result.exit_code == 0 and "Cohen's κ" in result.output
    result = invoke("agreement", str(a), str(b), "--eval-set", ES2, "--disagreements")
    assert result.output.split("\t")[0] == tid(1)


@pytest.mark.parametrize("args", [
    ("{a}",),  # no other annotator
    ("{a}", "{missing}"),
    ("{a}", "{b}", "--eval-set", "nosuch"),
    ("{a}", "{bad_csv}"),
    ("{a}", "{not_db}"),
    ("{a}", "{b}", "--disagreements"),  # several eval sets
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P})
    b = make_copy(tmp_path / "b.sqlite", {"0": P})
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("eval_set_id,trace_id,rating\nS,t,great\n")
    not_db = tmp_path / "x.txt"
    not_db.write_text("hello")
    names = {"a": a, "b": b, "missing": tmp_path / "nope.sqlite", "bad_csv": bad_csv, "not_db": not_db}
    result = invoke("agreement", *(x.format(**names) for x in args))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


def test_copy_reopened_by_path_for_d1_export_wrangler_dir(tmp_path: Path) -> None:
    """A wrangler project dir is an annotator too (its local D1 file)."""
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": N})
    project = tmp_path / "proj" / ".wrangler" / "state" / "v3" / "d1" / "miniflare-D1DatabaseObject"
    project.mkdir(parents=True)
    shutil.copy(make_copy(tmp_path / "b.sqlite", {"0": P, "1": N}), project / "abc.sqlite")
    pair = report_for(a, tmp_path / "proj")["pairs"][0]
    assert (pair["overlap"], pair["agree"], pair["percent_agreement"]) == (2, 2, 1.0)


def test_copy_without_unique_key_counts_each_trace_once(tmp_path: Path) -> None:
    """A hostile copy whose feedback table lost UNIQUE(eval_set_id, trace_id) and holds two rows for a trace:
    the packed ratings must not mix (one rating per trace and annotator)."""
    a = make_copy(tmp_path / "a.sqlite", {"0": P, "1": N, "2": P})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": N, "2": P})
    conn = sqlite3.connect(b)
    with conn:
        conn.execute("PRAGMA legacy_alter_table = ON")
        conn.execute("ALTER TABLE feedback RENAME TO feedback_old")
        conn.execute("CREATE TABLE feedback (id TEXT, eval_set_id TEXT, trace_id TEXT, rating TEXT, "
                     "notes TEXT, created_at TEXT, updated_at TEXT)")
        conn.execute("INSERT INTO feedback SELECT * FROM feedback_old")
        conn.execute("DROP TABLE feedback_old")
        conn.execute("INSERT INTO feedback (id, eval_set_id, trace_id, rating) "
                     "VALUES ('dup', ?, ?, 'neutral')", (ES2, tid(0)))
    conn.close()
    s = report_for(a, b)
    assert s["annotators"][1]["labelled"] == 3
    pair = s["pairs"][0]
    assert pair["overlap"] == 3 and sum(sum(r.values()) for r in pair["confusion"].values()) == 3


def test_annotator_name_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from iofold_tui.data.labels.annotator import resolve_annotator, set_annotator
    from iofold_tui.data.prefs import save_prefs

    monkeypatch.delenv("IOFOLD_TUI_ANNOTATOR", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    db = tmp_path / "x.sqlite"
    assert resolve_annotator(db) == ("osuser", "os user")
    set_annotator("  Alice\n  B ")
    assert resolve_annotator(db) == ("Alice B", "settings")
    save_prefs(db, {"annotator": "per-db"})
    assert resolve_annotator(db) == ("per-db", "prefs")
    monkeypatch.setenv("IOFOLD_TUI_ANNOTATOR", "carol")
    assert resolve_annotator(db) == ("carol", "env")
    monkeypatch.delenv("IOFOLD_TUI_ANNOTATOR")

    def no_user() -> str:
        raise KeyError("no user")

    monkeypatch.setattr("getpass.getuser", no_user)
    set_annotator(None)
    assert resolve_annotator(None) == ("unknown", "unknown")


def test_labels_in_eval_sets_the_source_lacks_are_counted(tmp_path: Path) -> None:
    a = make_copy(tmp_path / "a.sqlite", {"0": P})
    b = make_copy(tmp_path / "b.sqlite", {"0": P, "1": N})
    conn = sqlite3.connect(b)
    with conn:
        conn.execute("PRAGMA ignore_check_constraints = 1")
        conn.execute("INSERT INTO eval_sets (id, workspace_id, name) VALUES ('zz_new', 'ws_demo', 'new set')")
        conn.executemany("INSERT INTO feedback (id, eval_set_id, trace_id, rating) "
                         "VALUES (?, 'zz_new', ?, ?)",
                         [("n1", tid(0), P), ("n2", tid(1), N), ("n3", tid(2), "bogus")])
    conn.close()
    opened = open_source(a, read_only=True)
    with open_agreement(opened, [str(b)]) as session:
        report = session.report()
    assert report["unknown_eval_sets"] == {"b.sqlite": 2}


# ---------------------------------------------------------------- property: SQL figures = a direct count

_labels = st.dictionaries(st.integers(0, 11), st.sampled_from([P, N, U]), max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mine=_labels, bob=_labels, carol=_labels)
def test_packed_figures_equal_a_direct_count(tmp_path_factory: pytest.TempPathFactory, mine: dict, bob: dict,
                                             carol: dict) -> None:
    folder = tmp_path_factory.mktemp("prop")
    a = make_copy(folder / "a.sqlite", {str(k): v for k, v in mine.items()})
    files = []
    for name, labels in (("bob", bob), ("carol", carol)):
        path = folder / f"{name}.csv"
        path.write_text("eval_set_id,trace_id,rating\n"
                        + "".join(f"{ES2},{tid(k)},{v}\n" for k, v in labels.items()))
        files.append(path)
    s = report_for(a, *files)
    people = [mine, bob, carol]
    for pair, (i, j) in zip(s["pairs"], [(0, 1), (0, 2), (1, 2)], strict=True):
        table = {r: {c: 0 for c in (P, N, U)} for r in (P, N, U)}
        for k in set(people[i]) & set(people[j]):
            table[people[i][k]][people[j][k]] += 1
        assert pair["confusion"] == table
        percent, kappa = cohen(table)
        assert (pair["percent_agreement"], pair["cohens_kappa"]) == (percent.value, kappa.value)
    everyone = set(mine) & set(bob) & set(carol)
    counts = [([[p[k] for p in people].count(c) for c in (P, N, U)], 1) for k in everyone]
    traces, unanimous, kappa = fleiss(counts, 3)
    assert (s["fleiss"]["traces"], s["fleiss"]["fleiss_kappa"]) == (traces, kappa.value)
    assert s["fleiss"]["unanimous"] == unanimous.value
    assert [x["labelled"] for x in s["annotators"]] == [len(mine), len(bob), len(carol)]
    differ = {k for k in set(mine) | set(bob) | set(carol) if len({p[k] for p in people if k in p}) > 1}
    assert s["disagreements"] == len(differ)
