"""The evals pane's state (ui/models/evals.py) without an app: what the list selects, the details' LRU, the
diff base (parent or picked), the diff wanted and the one that arrives, counters that disagree."""

from __future__ import annotations

from types import SimpleNamespace

from iofold_tui.data.evals.versions import ChainLink, EvalList
from iofold_tui.ui.models.evals import BASES, DETAILS, EvalsModel


def summary(eval_id: str, executions: int = 0, contradictions: int = 0) -> SimpleNamespace:
    return SimpleNamespace(id=eval_id, name="e", version=int(eval_id[1:]), execution_count=executions,
                           contradiction_count=contradictions)


def detail(eval_id: str) -> SimpleNamespace:
    return SimpleNamespace(summary=summary(eval_id))


def listing(*ids: str) -> EvalList:
    parents = (None, *ids)
    rows = [(summary(i), ChainLink(i, parent_id=p, base_id=p)) for i, p in zip(ids, parents, strict=False)]
    return EvalList("set", rows)  # type: ignore[arg-type]


def test_the_list_selects_what_was_asked_for_else_the_selection_else_the_first() -> None:
    m = EvalsModel()
    assert m.listed(listing()) is None  # an empty set selects nothing
    assert m.listed(listing("v1", "v2")) == "v1"
    m.select("v2")
    assert m.listed(listing("v1", "v2", "v3")) == "v2"  # kept across reloads
    m.pending_select = "v3"
    assert m.listed(listing("v1", "v2", "v3")) == "v3"
    m.pending_select = "v9"  # not listed: the pane locates it, the selection stays
    assert m.listed(listing("v1", "v2")) == "v2" and m.ids() == ["v1", "v2"]


def test_details_are_an_lru_and_only_the_selected_one_is_shown() -> None:
    m = EvalsModel()
    m.select("v1")
    assert not m.has_detail("v1") and m.current() == (None, [])
    assert m.detail_loaded("v1", detail("v1"), []) is True  # type: ignore[arg-type]
    assert m.detail_loaded("v2", detail("v2"), []) is False  # type: ignore[arg-type]
    for n in range(3, DETAILS + 3):
        m.has_detail("v1")  # used: kept
        m.detail_loaded(f"v{n}", detail(f"v{n}"), [])  # type: ignore[arg-type]
    assert len(m.details) == DETAILS and m.has_detail("v1") and not m.has_detail("v2")
    m.reset()
    assert not m.details and m.counts is None and m.diff_key is None


def test_diff_base_is_the_parent_unless_picked_and_stale_diffs_are_ignored() -> None:
    m = EvalsModel()
    m.listed(listing("v1", "v2", "v3"))
    m.select("v1")
    assert m.base_id() is None and m.want_diff(detail("v1")) is None and m.diff_key is None  # type: ignore[arg-type]
    m.select("v3")
    m.detail_loaded("v3", detail("v3"), [])  # type: ignore[arg-type]
    key = m.want_diff(detail("v3"))  # type: ignore[arg-type]
    assert key == ("v2", "v3", False) and m.want_diff(detail("v3")) == key  # still computing: asked again
    m.base_override = "v1"
    m.full_context = True
    newer = m.want_diff(detail("v3"))  # type: ignore[arg-type]
    assert newer == ("v1", "v3", True)
    assert not m.diff_loaded(key, detail("v2"), [])  # type: ignore[arg-type]  # the old one: ignored
    assert not m.diff_loaded(newer, None, [])  # the base is gone
    assert m.diff_loaded(newer, detail("v1"), ["sections"])  # type: ignore[arg-type, list-item]
    assert m.want_diff(detail("v3")) is None  # shown: not again  # type: ignore[arg-type]
    pair = m.diff_pair()
    assert pair is not None and pair[0].summary.id == "v1" and pair[1].summary.id == "v3"
    m.select("v2")  # another eval: the picked base goes
    assert m.base_override is None and m.base_id() == "v1"
    for n in range(BASES + 2):
        m.diff_key = (f"b{n}", "v2", False)
        m.diff_loaded(m.diff_key, detail(f"b{n}"), [])  # type: ignore[arg-type]
    assert len(m.bases) == BASES and m.detail(f"b{BASES + 1}") is not None and m.detail("b0") is None


def test_stored_counters_that_disagree_with_the_recomputed_ones() -> None:
    m = EvalsModel()
    evals = EvalList("set", [(summary("v1", 3, 1), ChainLink("v1")), (summary("v2", 2, 0), ChainLink("v2"))])  # type: ignore[list-item]
    m.listed(evals)
    assert m.disagreeing() == 0  # nothing recomputed yet
    m.counted({"v1": SimpleNamespace(execution_count=3, contradictions=1),  # type: ignore[dict-item]
               "v2": SimpleNamespace(execution_count=5, contradictions=0)})
    assert m.disagreeing() == 1 and m.differs(evals.rows[1][0]) and not m.differs(evals.rows[0][0])
