"""The Textual app: panes as modes, the shared state, the database-change watcher."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from iofold_tui.data.prefs import load_prefs
from iofold_tui.data.source import catalog
from iofold_tui.data.source.catalog import EvalSet, Workspace
from iofold_tui.data.source.opened import OpenedSource
from iofold_tui.ui.app_prefs import restore_prefs, save_app_prefs
from iofold_tui.ui.keymap import load_keymap
from iofold_tui.ui.navigation import OpenMatrixColumn, OpenReviewQueue
from iofold_tui.ui.palette import EvalProvider, FilterProvider, TraceIdProvider, app_commands
from iofold_tui.ui.pane import Pane
from iofold_tui.ui.panes import PANES, PaneSpec
from iofold_tui.ui.state import AppState
from iofold_tui.ui.widgets import PickOne


@dataclass
class CatalogLoaded(Message):
    workspaces: list[Workspace]
    eval_sets: list[EvalSet]


@dataclass
class DatabaseChanged(Message):
    """Another connection or process changed the database (``PRAGMA data_version`` moved)."""


class IofoldApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "iofold-tui"
    COMMANDS = App.COMMANDS | {TraceIdProvider, EvalProvider, FilterProvider}
    BINDINGS = [
        # Not in the footer (it has no room for them after a pane's own keys): the header lists them.
        *[Binding(p.key, f"pane('{p.mode}')", p.title, id=f"pane.{p.mode}", show=False) for p in PANES],
        Binding("v", "pick_eval_set", "Eval set", id="app.eval_set"),
        Binding("w", "pick_workspace", "Workspace", id="app.workspace"),
        Binding("question_mark", "toggle_help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]
    # Label writer timings (ui.labeling.LabelQueue); tests shrink them to simulate long locks quickly.
    label_writer_timing = None

    def __init__(
        self,
        source: OpenedSource,
        *,
        pane: str | None = None,  # None: the pane remembered for this database, else the trace list
        eval_set: str | None = None,
        select: str | None = None,
        watch_interval: float = 1.0,
    ) -> None:
        self.source = source
        self.state = AppState()
        self.start_pane = pane or "traces"
        self.explicit_start = pane is not None or eval_set is not None or select is not None
        self.start_eval_set = eval_set
        self.start_select = select
        self.watch_interval = watch_interval
        super().__init__()
        for spec in PANES:
            self.add_mode(spec.mode, spec.create)
        self.user_keymap: dict[str, str] = {}  # binding id -> keys, from the user's keymap file
        self._data_version: int | None = None
        self._others_version: int | None = None

    @property
    def db(self):  # Database; a property so panes read it one way
        return self.source.db

    def on_mount(self) -> None:
        if self.source.kind != "demo":
            self.state.trace_columns = load_prefs(self.db.path).get("trace_columns")
        keymap, problem = load_keymap()
        self.user_keymap = keymap
        if keymap:
            self.set_keymap(keymap)
            self.call_after_refresh(self._check_keymap)  # loads every pane's class: after the first frame
        if problem:
            self.notify(problem, severity="warning", timeout=8)
        for note in self.source.notes[:6]:
            self.notify(note, title="source", timeout=6)
        if self.source.kind == "d1-export":  # ui/carry.py loads the label store's modules: only when needed
            from iofold_tui.ui.carry import start_stranded_check  # labels made on an older export of this D1

            self.call_after_refresh(start_stranded_check, self)
        # The first catalog read is two tiny tables (workspaces, eval sets): done here so the first
        # pane mounts without waiting for a worker round trip. Later refreshes go through the worker.
        conn = self.db.conn()
        self.on_catalog_loaded(CatalogLoaded(catalog.workspaces(conn), catalog.eval_sets(conn, None)))
        if self.watch_interval > 0:
            self.set_interval(self.watch_interval, self.watch_database)
        # Full garbage collections over Textual's long-lived caches (~100k objects) took 60-200 ms and
        # landed on key presses. Objects alive after start-up are moved out of the collector's reach,
        # and again now and then; cyclic garbage made later is still collected as usual.
        self.set_timer(1.0, self._freeze_gc)
        self.set_interval(30.0, self._freeze_gc)
        self._open_labels()
        # Opening the label store (sidecar, crash recovery; on a live D1 a round trip) once the launch has
        # settled, so the first label key costs what every other one does (it was 160 ms local, 400 ms on
        # D1 at +200 ms when the key opened it).
        self.set_timer(1.5, self._open_labels_early)

    @work(thread=True, group="labels-open")
    def _open_labels(self) -> None:
        """Labels queued by an earlier session (it quit, or was killed, while the database was locked) are
        written now, whatever pane is shown: open the store and its writer if the sidecar holds any."""
        from iofold_tui.data.labels.history_schema import queued_count

        if self.source.read_only_reason:
            return
        queued = queued_count(Path(self.source.history_path))
        if queued:
            from iofold_tui.ui import labeling  # the label store's modules: only when there is work for it

            # A store that cannot open says why when a label key is pressed.
            with contextlib.suppress(Exception):
                labeling.label_queue(self)
                self.call_from_thread(self.notify, f"{queued:,} label(s) queued by the previous session: "
                                      "writing them to the database now.", title="labels", timeout=8)

    @work(thread=True, group="labels-open")
    def _open_labels_early(self) -> None:
        if self.source.read_only_reason:
            return
        from iofold_tui.ui import labeling

        with contextlib.suppress(Exception):  # a store that cannot open says why when a label key is pressed
            labeling.label_queue(self)

    async def action_quit(self) -> None:
        """Quitting with labels not written yet (another process holds the lock) asks first; they stay queued
        in the label history either way, and the next start writes them."""
        from iofold_tui.ui.labeling import open_label_queue

        queue = open_label_queue(self)
        if queue is None or not queue.pending:
            self.exit()
            return
        n = len(queue.pending)
        options = [
            ("keep", f"Quit: keep the {n:,} pending label(s) queued; the next start writes them"),
            ("wait", "Wait until they are written, then quit"),
            ("stay", "Don't quit"),
        ]

        def chosen(choice: str | None) -> None:
            if choice == "keep":
                self.exit()
            elif choice == "wait":
                self.notify("quitting once the pending labels are written…", timeout=4)
                self._quit_when_written()

        self.push_screen(PickOne(f"{n:,} label(s) not written yet (the database is locked)", options, "keep"),
                         chosen)

    def _quit_when_written(self) -> None:
        from iofold_tui.ui.labeling import open_label_queue

        queue = open_label_queue(self)
        if queue is None or not queue.pending:
            self.exit()
        else:
            self.set_timer(0.2, self._quit_when_written)

    def _freeze_gc(self) -> None:
        # Collect first: cyclic garbage alive at the moment of a freeze would never be freed.
        gc.collect()
        gc.freeze()

    def hold_gc(self) -> None:
        """Keep the cyclic collector out of a key's path to its frame: a collection of the older generations
        takes 10-30 ms. It resumes 0.1 s later (the frame takes ~20 ms), while the user reads what the key
        brought up."""
        gc.disable()
        self.set_timer(0.1, gc.enable)

    @work(thread=True, exclusive=True, group="catalog", exit_on_error=False)
    def load_catalog(self) -> None:
        conn = self.db.conn()
        spaces = catalog.workspaces(conn)
        sets = catalog.eval_sets(conn, None)
        self.post_message(CatalogLoaded(spaces, sets))

    def on_catalog_loaded(self, message: CatalogLoaded) -> None:
        first = self.state.workspaces == []
        self.state.workspaces = message.workspaces
        self.refresh_bindings()
        if first and not self.explicit_start and self.source.kind != "demo":  # the demo starts fresh
            restore_prefs(self)
        self._all_eval_sets = message.eval_sets
        if self.state.workspace_id not in {w.id for w in message.workspaces}:
            self.state.workspace_id = message.workspaces[0].id if message.workspaces else None
        wanted = self.start_eval_set if first else self.state.eval_set_id
        self._apply_workspace(wanted)
        if first:
            self.switch_mode(self.start_pane if self.start_pane in {p.mode for p in PANES} else "traces")
        else:
            self.refresh_panes()

    def _apply_workspace(self, wanted_eval_set: str | None) -> None:
        ws = self.state.workspace_id
        every_set = ws is None or len(self.state.workspaces) <= 1
        sets = [es for es in self._all_eval_sets if every_set or es.workspace_id == ws]
        self.state.eval_sets = sets
        match = None
        if wanted_eval_set:
            match = next((es for es in sets if wanted_eval_set in (es.id, es.name)), None)
        if wanted_eval_set and match is None and self.start_eval_set == wanted_eval_set:
            self.notify(f"no eval set {wanted_eval_set!r}; showing {sets[0].name if sets else 'none'}",
                        severity="warning")
        chosen = match or (sets[0] if sets else None)
        self.state.eval_set_id = chosen.id if chosen else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick_workspace":  # only offered when there is a choice
            return len(self.state.workspaces) > 1
        return True

    def _check_keymap(self) -> None:
        from iofold_tui.ui.key_help import keymap_problems
        from iofold_tui.ui.keymap import keymap_path

        problem = keymap_problems(self.user_keymap, [b for b in self.BINDINGS if isinstance(b, Binding)])
        if problem:
            self.notify(f"keymap {keymap_path()}: {problem}", severity="warning", timeout=12)

    def action_toggle_help(self) -> None:
        """Every key of the current pane with its binding id (what keymap.toml remaps) and description."""
        from iofold_tui.ui.key_help import show_key_help

        title = getattr(self.screen, "pane_title", None) or type(self.screen).__name__.replace("Screen", "")
        show_key_help(self, f"{title} keys", getattr(self.screen, "help_notes", ()))

    # -- remembered per database (ui/app_prefs.py) ------------------------------------------------------
    remember_prefs = True  # False for `iofold-tui screenshot`

    def save_prefs(self) -> None:
        save_app_prefs(self)

    # -- jumps used by the palette and by panes ---------------------------------------------------------
    def open_trace(self, trace_id: str) -> None:
        from iofold_tui.ui.panes.trace_detail import TraceDetailScreen

        self.push_screen(TraceDetailScreen(trace_id))

    def open_eval(self, eval_id: str) -> None:
        if self.pane_spec("evals") is None:
            return
        self.switch_mode("evals")
        self.call_after_refresh(lambda: getattr(self.screen, "select_item", lambda _: None)(eval_id))

    def open_review_queue(self, trace_ids: tuple[str, ...]) -> None:
        """Review exactly these traces (a confusion-matrix cell, a selection): review mode with the trace
        filter set to them, so the queue pages through SQL like any other."""
        self.state.trace_filter = replace(self.state.trace_filter.cleared(), trace_ids=tuple(trace_ids))
        self.state.review_queue_pending = True
        for stack in self._screen_stacks.values():
            for screen in stack:
                if isinstance(screen, Pane):
                    screen.stale = True
        self.switch_mode("review")

    def on_open_review_queue(self, message: OpenReviewQueue) -> None:
        self.open_review_queue(message.trace_ids)

    def on_open_matrix_column(self, message: OpenMatrixColumn) -> None:
        self.state.pending_matrix_eval = message.eval_id  # taken by the matrix when it shows
        if self.pane_spec("matrix") is None:
            self.notify("the matrix pane is not part of this build", severity="warning")
            return
        self.switch_mode("matrix")

    def apply_trace_filter(self, changes: dict[str, object] | None) -> None:
        if changes is None:
            self.state.trace_filter = self.state.trace_filter.cleared()
        else:
            self.set_trace_filter(**changes)
        if self.current_mode != "traces":
            self.switch_mode("traces")
        self.refresh_panes()

    # -- panes -------------------------------------------------------------------------------------
    def action_pane(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def refresh_panes(self) -> None:
        """Workspace / eval set / data changed: reload the visible pane, mark the others stale."""
        for mode in self._screen_stacks:
            for screen in self._screen_stacks[mode]:
                if isinstance(screen, Pane):
                    screen.stale = True
        current = self.screen
        if isinstance(current, Pane) and current.is_mounted:
            current.stale = False
            current.set_status()
            current.reload()

    def action_pick_eval_set(self) -> None:
        options = [(es.id, f"{es.name}  (min {es.minimum_examples})") for es in self.state.eval_sets]
        if not options:
            self.notify("this workspace has no eval sets", severity="warning")
            return

        def chosen(value: str | None) -> None:
            if value and value != self.state.eval_set_id:
                self.state.eval_set_id = value
                self.refresh_panes()

        self.push_screen(PickOne("Eval set", options, self.state.eval_set_id), chosen)

    def action_pick_workspace(self) -> None:
        if len(self.state.workspaces) <= 1:
            self.notify("this database has one workspace")
            return

        def chosen(value: str | None) -> None:
            if value and value != self.state.workspace_id:
                self.state.workspace_id = value
                self._apply_workspace(None)
                self.state.trace_filter = self.state.trace_filter.cleared()
                self.refresh_panes()

        options = [(w.id, w.name) for w in self.state.workspaces]
        self.push_screen(PickOne("Workspace", options, self.state.workspace_id), chosen)

    def set_trace_filter(self, **changes: object) -> None:
        self.state.trace_filter = replace(self.state.trace_filter, **changes)  # type: ignore[arg-type]

    # -- database changes underneath ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)  # a locked file: next tick
    def watch_database(self) -> None:
        version = self.db.data_version()
        # Our own label writes move the version too (another connection): they need no reload, and one
        # per label (a catalog read, every pane's counts) would compete with the next label key.
        from iofold_tui.ui.labeling import open_label_store

        store = open_label_store(self)
        others = store.others_version() if store is not None else None
        moved = self._data_version is not None and version != self._data_version
        if moved and (others is None or others != self._others_version):
            self.post_message(DatabaseChanged())
        self._data_version, self._others_version = version, others

    def on_database_changed(self, _: DatabaseChanged) -> None:
        self.load_catalog()
        # A screen over the panes (the trace view) reloads itself.
        reload_on_change = getattr(self.screen, "reload_on_change", None)
        if reload_on_change is not None:
            reload_on_change()

    # -- command palette ------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from app_commands(self)

    def choose_eval_set(self, eval_set_id: str) -> None:
        self.state.eval_set_id = eval_set_id
        self.refresh_panes()

    def pane_spec(self, mode: str) -> PaneSpec | None:
        return next((p for p in PANES if p.mode == mode), None)

    def on_unmount(self) -> None:
        from iofold_tui.ui.labeling import close_label_store

        # only once the catalog was read (never overwrite prefs with a half-start), and never from a
        # headless screenshot: rendering a pane is not the user choosing it
        if self.state.workspaces and self.remember_prefs:
            self.save_prefs()
        close_label_store(self)
        self.db.close()


def css_path() -> Path:
    return Path(__file__).with_name("app.tcss")
