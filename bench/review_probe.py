"""Label key → committed → next trace on the terminal, measured in a real terminal (run by bench/bench.py).

This process is the real app (``iofold-tui DB --review``) with three timing hooks added:

* a key's time is the moment Textual's driver parsed its bytes from the terminal (``events.Key.time``);
* ``ReviewPane.action_label`` returning means the label is committed (it commits before returning);
* the first frame handed to the terminal after that (``App._display``) in which the review pane shows the
  next trace, fully loaded, ends the measurement.

Each sample is appended to OUT as a JSON line: {"ms": key → frame, "commit_ms": key → committed,
"queue_ms": key → its handler starts}.

    python bench/review_probe.py DB OUT [--eval-set NAME]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events
from textual._time import get_time

from iofold_tui.cli import main
from iofold_tui.ui.app import IofoldApp
from iofold_tui.ui.panes.review import ReviewPane


def install(out: Path) -> None:
    state: dict[str, object] = {"key_time": None, "armed": None}
    sink = out.open("a", buffering=1)

    original_on_event = IofoldApp.on_event

    async def on_event(self: IofoldApp, event: events.Event) -> None:
        if isinstance(event, events.Key):
            state["key_time"] = event.time
        await original_on_event(self, event)

    original_label = ReviewPane.action_label

    def action_label(self: ReviewPane, rating: str) -> None:
        handler_start = get_time()
        before = len(self.commit_ms)
        original_label(self, rating)
        if len(self.commit_ms) > before and state["key_time"] is not None:  # committed
            state["armed"] = (state["key_time"], self, self.commit_ms[-1], handler_start)

    original_display = IofoldApp._display

    def display(self: IofoldApp, screen: object, renderable: object) -> None:
        original_display(self, screen, renderable)
        armed = state["armed"]
        if armed is None or renderable is None:
            return
        key_time, pane, commit_ms, handler_start = armed  # type: ignore[misc]
        item = pane.current
        if item is not None and pane.steps_for == item.trace_id:  # the next trace, loaded, is in this frame
            now = get_time()
            queued_ms = (handler_start - key_time) * 1000  # key parsed → its handler starts
            sink.write(json.dumps({"ms": (now - key_time) * 1000, "commit_ms": queued_ms + commit_ms,
                                   "queue_ms": queued_ms}) + "\n")
            state["armed"] = None

    IofoldApp.on_event = on_event  # type: ignore[method-assign]
    ReviewPane.action_label = action_label  # type: ignore[method-assign]
    IofoldApp._display = display  # type: ignore[method-assign]


if __name__ == "__main__":
    db, out, *rest = sys.argv[1:]
    install(Path(out))
    sys.argv = ["iofold-tui", "open", db, "--review", *rest]
    time.sleep(0)
    main()
