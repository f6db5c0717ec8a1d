"""Labels made on an older export of the same D1 database: find them, count them, carry them over.

Each ``wrangler d1 export`` file gets its own working copy and label history (data/source/export/cache.py
keys the copy by the file's content). Opening next day's export ``b.sql`` would start a fresh history,
and the labels made on ``a.sql`` that never went back to D1 would be stranded. So every export copy's
history records which D1 database it is a copy of (``register_copy``: its workspace and eval-set ids,
never the file name), and on opening ``b.sql``:

- ``stranded_labels`` finds the histories of other copies of the same database (same workspaces, shared
  eval sets) and checks each net label change against ``b``'s rows with the patch's rules
  (labels/patch.py): "apply" (D1 as exported in b.sql still holds what that copy saw: not gone back yet),
  "done" (b.sql already holds our row: it went back), "conflict" (changed in D1 since: left as it is).
- ``carry_labels`` writes the "apply" ones into ``b``'s working copy as ONE undoable step (exact rows:
  same feedback ids and timestamps), so ``export-labels b.sql`` includes them; the older history is then
  marked as carried and no longer reported.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from iofold_tui.data.db import quote_ident
from iofold_tui.data.labels.history import LabelHistory
from iofold_tui.data.labels.patch import CheckedChange, NetChange, check_against, net_changes
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.sanitize import one_line
from iofold_tui.data.text import plural

HISTORY_SUFFIX = ".labels.sqlite"


@dataclass(frozen=True)
class Identity:
    """Which D1 database a copy is of: its workspace and eval-set ids."""

    workspaces: frozenset[str]
    eval_sets: frozenset[str]

    def same_database(self, other: Identity) -> bool:
        if not (self.eval_sets & other.eval_sets):
            return False
        return not (self.workspaces and other.workspaces) or bool(self.workspaces & other.workspaces)

    def to_json(self) -> str:
        return json.dumps({"workspaces": sorted(self.workspaces), "eval_sets": sorted(self.eval_sets)})

    @classmethod
    def from_json(cls, text: str) -> Identity:
        data = json.loads(text)
        return cls(
            frozenset(map(str, data.get("workspaces") or [])),
            frozenset(map(str, data.get("eval_sets") or [])),
        )


def read_identity(conn: sqlite3.Connection) -> Identity:
    """Both tables are tiny (a handful of rows); a missing table gives an empty set."""
    def ids(table: str) -> frozenset[str]:
        try:
            rows = conn.execute(f"SELECT id FROM {quote_ident(table)} LIMIT 10000")
            return frozenset(str(r[0]) for r in rows)
        except sqlite3.Error:
            return frozenset()

    return Identity(ids("workspaces"), ids("eval_sets"))


def register_copy(history_path: Path, identity: Identity, export_file: Path) -> None:
    """Note in a copy's history which database it is of and which file the user opened."""
    history = LabelHistory(history_path)
    try:
        if history.meta("identity") != identity.to_json():
            history.set_meta("identity", identity.to_json())
        if history.meta("export_file") != str(export_file):
            history.set_meta("export_file", str(export_file))
    finally:
        history.close()


@dataclass
class OtherCopy:
    history_path: Path
    export_file: str | None  # the .sql the user opened for that copy
    working_copy: str | None  # its working copy (gone when the same file was exported again)
    last_change: str  # UTC stamp of its latest label step

    @property
    def name(self) -> str:
        return Path(self.export_file).name if self.export_file else self.history_path.name

    @property
    def can_export(self) -> bool:
        """`export-labels EXPORT_FILE` still reaches this history (the file was not exported over)."""
        return bool(self.working_copy and Path(self.working_copy).is_file())


@dataclass
class StrandedReport:
    copies: list[OtherCopy] = field(default_factory=list)
    items: list[tuple[OtherCopy, CheckedChange]] = field(default_factory=list)

    def of(self, *verdicts: str) -> list[tuple[OtherCopy, CheckedChange]]:
        return [(c, i) for c, i in self.items if i.verdict in verdicts]

    @property
    def to_carry(self) -> list[tuple[OtherCopy, CheckedChange]]:
        return self.of("apply")

    @property
    def conflicts(self) -> list[tuple[OtherCopy, CheckedChange]]:
        return self.of("conflict", "trace missing", "eval set missing")

    @property
    def not_in_d1(self) -> int:
        """Labels made on older copies that have not gone back to D1 (as far as this export shows)."""
        return len(self.to_carry) + len(self.conflicts)

    def short_notice(self, how: str) -> str | None:
        """The notice in a few words (a TUI notification)."""
        n = self.not_in_d1
        if not n:
            return None
        names = ", ".join(sorted({one_line(c.name, 40) for c, _ in self.to_carry + self.conflicts}))
        return f"{plural(n, 'label')} made on an older copy ({names}) not in D1 yet: {how}"

    def notice(self, source: str, how: str | None = None) -> str | None:
        """The one line said at open, or None when nothing is stranded. ``how``: how to carry them
        (default: the carry-labels command line)."""
        n = self.not_in_d1
        if not n:
            return None
        names = ", ".join(sorted({one_line(c.name, 60) for c, _ in self.to_carry + self.conflicts}))
        conflicts = len(self.conflicts)
        clash = f" ({plural(conflicts, 'conflict with this export', 'conflicts with this export')})" \
            if conflicts else ""
        export_first = [c for c in self.copies if c.can_export and c.export_file]
        first = (
            f", or export them first (iofold-tui export-labels {one_line(export_first[0].export_file, 80)})"
            if export_first
            else ""
        )
        return (f"{plural(n, 'label')} made on an older copy of this D1 database ({names}) "
                f"{'has' if n == 1 else 'have'} not gone back to D1{clash}: carry them over "
                f"({how or 'iofold-tui carry-labels ' + one_line(source, 80)}){first}")


def _read_meta(path: Path) -> dict[str, str] | None:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        row = conn.execute(
            "SELECT max(status_at) FROM steps WHERE status NOT IN ('pending', 'discarded')"
        ).fetchone()
        meta["_last_change"] = row[0] or ""
        if "identity" not in meta:  # a history made before copies were registered: its eval sets
            sets = [str(r[0]) for r in conn.execute("SELECT DISTINCT eval_set_id FROM changes LIMIT 10000")]
            meta["identity"] = json.dumps({"workspaces": [], "eval_sets": sets})
        return meta
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def other_copies(
    history_path: Path, identity: Identity, *, export_file: Path | None = None
) -> list[OtherCopy]:
    """Histories of other working copies of the same D1 database that still hold labels to account for,
    oldest first. ``export_file``: only the copies made from that file."""
    me = history_path.resolve()
    found: list[OtherCopy] = []
    for path in sorted(history_path.parent.glob(f"*{HISTORY_SUFFIX}")):
        if path.resolve() == me:
            continue
        meta = _read_meta(path)
        if meta is None or meta.get("carried_into") or not meta.get("_last_change"):
            continue
        if meta.get("in_d1_as_of") == meta["_last_change"]:  # every label went back, none made since
            continue
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            if not identity.same_database(Identity.from_json(meta["identity"])):
                continue
            if export_file is not None and meta.get("export_file") not in (str(export_file),
                                                                             str(Path(export_file).resolve())):
                continue
            found.append(
                OtherCopy(path, meta.get("export_file"), meta.get("source_db"), meta["_last_change"])
            )
    return sorted(found, key=lambda c: c.last_change)


def stranded_labels(conn: sqlite3.Connection, copies: Iterable[OtherCopy]) -> StrandedReport:
    """Check every net label change of ``copies`` against this copy's rows (``conn``). Reads only."""
    report = StrandedReport(list(copies))
    latest: dict[tuple[str, str], tuple[OtherCopy, NetChange]] = {}
    for copy in report.copies:  # oldest first: a later copy's change of the same key wins
        history = LabelHistory(copy.history_path)
        try:
            for n in net_changes(history):
                latest[(n.eval_set_id, n.trace_id)] = (copy, n)
        finally:
            history.close()
    by_copy: dict[Path, list[NetChange]] = {}
    for copy, n in latest.values():
        by_copy.setdefault(copy.history_path, []).append(n)
    sets = read_identity(conn).eval_sets
    for copy in report.copies:
        for item in check_against(by_copy.get(copy.history_path, []), conn).items:
            if item.verdict == "apply" and item.remote is None and item.change.eval_set_id not in sets:
                # An eval set made in the TUI on the older copy: this copy has no row for the label to refer
                # to.
                item = CheckedChange(item.change, "eval set missing", None)
            report.items.append((copy, item))
    return report


@dataclass(frozen=True)
class CarryResult:
    carried: int
    conflicts: list[tuple[OtherCopy, CheckedChange]]
    already: int  # went back to D1 already (this export holds them)
    step_id: int | None


def carry_labels(store: LabelStore, report: StrandedReport) -> CarryResult:
    """Write the labels of ``report`` that are not in this copy yet as one undoable step; conflicts stay
    as this copy has them. The older copies are then marked carried (their labels live on here)."""
    rows = [(i.change.eval_set_id, i.change.trace_id, i.remote, i.change.final) for _, i in report.to_carry]
    step = store.put_rows(rows, kind="carry") if rows else None
    carried = {(c.eval_set_id, c.trace_id) for c in step.changes} if step else set()
    # States earlier patches from the old copies wrote may be in D1: later patches from here may replace them.
    exported: list[tuple[str, str, str]] = []
    for copy in report.copies:
        old = LabelHistory(copy.history_path)
        try:
            for es, tid in carried:
                exported.extend((es, tid, s) for s in old.exported_states(es, tid))
        finally:
            old.close()
    if exported:
        store.history.record_exported(exported)
    for copy in report.copies:
        old = LabelHistory(copy.history_path)
        try:
            old.set_meta("carried_into", str(store.history.path))
        finally:
            old.close()
    return CarryResult(len(carried), report.conflicts, len(report.of("done")), step.id if step else None)


def check_opened(opened: object, *, export_file: Path | None = None) -> StrandedReport | None:
    """The stranded-label report for an opened source (an ``OpenedSource``); None when it is not a D1
    export or no other copy of the same database holds labels. Cost grows with those copies' labels:
    call it off the UI thread."""
    from iofold_tui.data.db import connect

    if getattr(opened, "kind", None) != "d1-export":
        return None
    history_path: Path = opened.history_path  # type: ignore[attr-defined]
    history = LabelHistory(history_path)
    try:
        identity_json = history.meta("identity")
    finally:
        history.close()
    if not identity_json:
        return None
    copies = other_copies(history_path, Identity.from_json(identity_json), export_file=export_file)
    if not copies:
        return None
    with contextlib.closing(connect(opened.db.path, read_only=True)) as conn:  # type: ignore[attr-defined]
        report = stranded_labels(conn, copies)
    pending = {c.history_path for c, _ in report.to_carry + report.conflicts}
    for copy in report.copies:  # all of its labels are in D1: not worth reading again until it changes
        if copy.history_path not in pending:
            with contextlib.suppress(sqlite3.Error, OSError):
                history = LabelHistory(copy.history_path)
                try:
                    history.set_meta("in_d1_as_of", copy.last_change)
                finally:
                    history.close()
    return report
