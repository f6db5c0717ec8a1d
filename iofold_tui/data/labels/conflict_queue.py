"""The queue of label conflicts an import left unresolved, and their resolution one at a time.

``import-labels --apply`` without ``--prefer`` writes the new labels and queues the conflicts here (a JSON
file in iofold-tui's data dir, one per database: never in the user's tables). The TUI's conflict queue
(ui/panes/label_conflicts.py) shows each with both labels and notes and resolves it: keep mine (no write),
take theirs (their rating and note), or set a third rating (my note kept). Writes go through the label
store (one undoable step each, in the label history). A conflict whose row of mine changed since it was
queued is still shown: the screen shows my label as it is now.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iofold_tui.data import paths
from iofold_tui.data.labels.history import FeedbackRow, LabelChange
from iofold_tui.data.labels.store import LabelStore
from iofold_tui.data.labels.store_types import new_feedback_id
from iofold_tui.data.ratings import RATINGS

CHOICES = ("mine", "theirs", *RATINGS)


@dataclass(frozen=True)
class QueuedConflict:
    eval_set_id: str
    trace_id: str
    origin: str  # the file or copy it came from
    theirs_rating: str | None  # None: they have no label
    theirs_notes: str | None
    annotator: str | None = None
    queued_at: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.eval_set_id, self.trace_id)


def queue_path(db_path: Path) -> Path:
    folder = paths.data_dir() / "conflicts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{paths.path_key(Path(db_path))}.json"


def load_conflicts(db_path: Path) -> list[QueuedConflict]:
    """The queued conflicts, oldest first (an unreadable file is an empty queue)."""
    try:
        data = json.loads(queue_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out: list[QueuedConflict] = []
    for item in data if isinstance(data, list) else []:
        try:
            out.append(QueuedConflict(**{k: item.get(k) for k in QueuedConflict.__dataclass_fields__}))
        except (TypeError, AttributeError):
            continue
    return [c for c in out if isinstance(c.eval_set_id, str) and isinstance(c.trace_id, str)]


def _save(db_path: Path, items: list[QueuedConflict]) -> None:
    target = queue_path(db_path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".conflicts-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump([asdict(c) for c in items], fh, ensure_ascii=False)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_conflicts(db_path: Path, items: list[Any], origin: str, at: str) -> int:
    """Queue ``items`` (ImportItem conflicts); a key already queued is replaced by the newer one. Returns
    the queue's length."""
    return queue_conflicts(db_path, [QueuedConflict(i.eval_set_id, i.trace_id, origin, i.rating, i.notes,
                                                    i.annotator, at) for i in items])


def queue_conflicts(db_path: Path, conflicts: list[QueuedConflict]) -> int:
    """Queue ``conflicts``; a key already queued is replaced by the newer one. Returns the queue's length."""
    queue = {c.key: c for c in load_conflicts(db_path)}
    for c in conflicts:
        queue.pop(c.key, None)
        queue[c.key] = c
    _save(db_path, list(queue.values()))
    return len(queue)


def drop_conflict(db_path: Path, key: tuple[str, str]) -> None:
    drop_conflicts(db_path, {key})


def drop_conflicts(db_path: Path, keys: set[tuple[str, str]]) -> None:
    """Take resolved keys off the queue (nothing to do when none of them is queued)."""
    queue = load_conflicts(db_path)
    kept = [c for c in queue if c.key not in keys]
    if len(kept) != len(queue):
        _save(db_path, kept)


def resolve(store: LabelStore, conflict: QueuedConflict, choice: str) -> LabelChange | None:
    """Resolve ``conflict`` with ``choice`` (mine | theirs | positive | negative | neutral): the label is
    written (one step in the history), then the conflict leaves the queue. None for "mine" (no write)."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {', '.join(CHOICES)}, not {choice!r}")
    change = None
    if choice == "theirs":  # their label, recorded as theirs in the history (issue 18)
        mine = store.get(conflict.eval_set_id, conflict.trace_id)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        new = None
        if conflict.theirs_rating is not None:
            new = FeedbackRow(mine.id if mine else new_feedback_id(), conflict.theirs_rating,
                              conflict.theirs_notes, mine.created_at if mine else now, now)
        state = None if mine is None else (mine.id, mine.rating, mine.notes, mine.updated_at)
        step = store.put_rows([(conflict.eval_set_id, conflict.trace_id, state, new)], kind="label",
                              annotator=conflict.annotator or f"import: {Path(conflict.origin).name}")
        change = step.changes[0] if step else None
    elif choice != "mine":
        change = store.set_label(conflict.eval_set_id, conflict.trace_id, choice)  # type: ignore[arg-type]
    drop_conflict(store.db_path, conflict.key)
    return change
