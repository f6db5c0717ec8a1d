"""The facet view (VisiData's Shift+F) of the trace list: counts and shares of one facet's values.

Keys 1–7 (or ←/→) switch the facet: source, errors, rating (current eval set), verdict (its newest eval
version), tool, error message, day. Enter on a value returns the trace filter narrowed to it. Every
query runs in a worker (``data/search/facets.py``); tool and error facets read the search sidecar.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from iofold_tui.data.db import Database
from iofold_tui.data.evals.lookup import first_eval_set, newest_version
from iofold_tui.data.search import facets as F
from iofold_tui.data.source.opened import OpenedSource
from iofold_tui.data.traces.query import TraceFilter
from iofold_tui.ui.text import cell

if TYPE_CHECKING:  # imported where used: the search index is not loaded until a facet is counted
    from iofold_tui.data.search.index import SearchIndex

TITLES = {"source": "source", "has_errors": "errors", "rating": "rating", "verdict": "verdict",
          "tool": "tool", "error": "error msg", "day": "day"}


@dataclass
class FacetLoaded(Message):
    facet: F.Facet | None
    note: str


@dataclass
class FacetChosen(Message):
    flt: TraceFilter | None
    note: str


class FacetScreen(ModalScreen[TraceFilter | None]):
    BINDINGS = [
        Binding("escape", "dismiss_none", "Close", id="facets.close"),
        Binding("left", "cycle(-1)", "Previous facet", id="facets.previous"),
        Binding("right", "cycle(1)", "Next facet", id="facets.next"),
        *[Binding(str(i + 1), f"show('{name}')", TITLES[name], id=f"facets.{name}", show=False)
          for i, name in enumerate(F.FACETS)],
    ]
    DEFAULT_CSS = """
    FacetScreen { align: center middle; }
    FacetScreen > Vertical {
        width: 90%; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    FacetScreen #facet-tabs { height: 1; }
    FacetScreen #facet-note { height: auto; color: $text-muted; }
    FacetScreen OptionList { height: 1fr; }
    """

    def __init__(self, db: Database, source: OpenedSource, flt: TraceFilter, facet: str = "source",
                 counted: TraceFilter | None = None) -> None:
        super().__init__()
        self.db = db
        self.opened = source
        self.flt = flt
        self.counted = counted  # the list's filter with its scope: the traces the counts are over
        self.facet_name = facet
        self.facet: F.Facet | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._tabs(), id="facet-tabs")
            yield Label("", id="facet-note")
            yield OptionList(id="facet-values")

    def on_mount(self) -> None:
        self.load(self.facet_name)

    def _tabs(self) -> Text:
        out = Text()
        for i, name in enumerate(F.FACETS):
            out.append(f" {i + 1} {TITLES[name]} ", style="reverse bold" if name == self.facet_name else "")
        out.append("  ←/→ · Enter filters · Esc", style="dim")
        return out

    def action_show(self, name: str) -> None:
        if name in F.FACETS:
            self.facet_name = name
            self.query_one("#facet-tabs", Label).update(self._tabs())
            self.query_one("#facet-note", Label).update(Text("counting…", style="yellow"))
            self.load(name)

    def action_cycle(self, step: int) -> None:
        names = list(F.FACETS)
        self.action_show(names[(names.index(self.facet_name) + step) % len(names)])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def _index(self) -> SearchIndex | None:
        from iofold_tui.data.search.index import IndexUnavailable, SearchIndex, source_key

        src = self.opened
        try:
            index = SearchIndex(source_key(src.kind, src.origin, src.db.path))
            return index if index.exists() else None
        except IndexUnavailable:
            return None

    def _scope(self, conn: sqlite3.Connection) -> tuple[str | None, str | None]:
        es = self.flt.eval_set_id
        if not es:
            es = first_eval_set(conn)
        return es, newest_version(conn, es)

    @work(thread=True, exclusive=True, group="facet")
    def load(self, name: str) -> None:
        index = self._index()
        try:
            with self.db.fresh() as conn:
                if index is not None:
                    index.sync(conn)
                es, ev = self._scope(conn)
                facet = F.facet(conn, name, db_path=self.db.path, index=index, eval_set_id=es, eval_id=ev,
                                flt=self.counted)
            how = "cached" if facet.cached else f"{facet.ms:,.0f} ms"
            scope = f" · eval set {facet.scope['eval_set_id']}" if "eval_set_id" in facet.scope else ""
            scope += f" · eval {facet.scope['eval_id']}" if "eval_id" in facet.scope else ""
            over = facet.note or f"counting all {facet.total:,} traces (the list has no filters)"
            note = f"{len(facet.values):,} values · {over} ({how}){scope}"
            self.post_message(FacetLoaded(facet, note))
        except (ValueError, sqlite3.DatabaseError) as exc:
            self.post_message(FacetLoaded(None, str(exc)))
        finally:
            if index is not None:
                index.close()

    def on_facet_loaded(self, message: FacetLoaded) -> None:
        self.facet = message.facet
        self.query_one("#facet-note", Label).update(cell(message.note, 200))
        values = self.query_one("#facet-values", OptionList)
        values.clear_options()
        if message.facet is None:
            return
        top = max((v.count for v in message.facet.values), default=1)
        avail = max(30, values.size.width - 4)
        bar_max = max(4, min(20, avail // 5))
        width = max(10, avail - 20 - bar_max)
        options = []
        for v in message.facet.values:
            line = cell(v.value, width)
            line.pad_right(width - line.cell_len)
            line.append(f" {v.count:>10,} {v.share:>7.1%} ")
            line.append("█" * max(1, round(bar_max * v.count / top)), style="cyan")
            options.append(Option(line, id=None))
        values.add_options(options)
        values.highlighted = 0 if options else None
        values.focus()

    @on(OptionList.OptionSelected, "#facet-values")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if self.facet is not None and 0 <= event.option_index < len(self.facet.values):
            self.choose(self.facet, self.facet.values[event.option_index].value)

    @work(thread=True, exclusive=True, group="facet-filter")
    def choose(self, facet: F.Facet, value: str) -> None:
        index = self._index()
        try:
            with self.db.fresh() as conn:
                flt = F.facet_filter(self.flt, facet, value, conn, index)
            self.post_message(FacetChosen(flt, ""))
        except (ValueError, sqlite3.DatabaseError) as exc:
            self.post_message(FacetChosen(None, str(exc)))
        finally:
            if index is not None:
                index.close()

    def on_facet_chosen(self, message: FacetChosen) -> None:
        if message.flt is None:
            self.query_one("#facet-note", Label).update(cell(message.note, 200))
            return
        self.dismiss(message.flt)
