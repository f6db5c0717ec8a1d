"""User keymaps: ``keymap.toml`` in the config dir maps binding ids to keys, e.g.

    "review.positive" = "a,1,p"
    "pane.matrix" = "ctrl+x"

Every ``Binding`` in iofold-tui has an ``id`` so this works for all of them (``App.set_keymap``).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def keymap_path() -> Path:
    env = os.environ.get("IOFOLD_TUI_KEYMAP")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("iofold-tui")) / "keymap.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """(keymap, problem): a broken file never stops the app, it is reported instead."""
    path = path or keymap_path()
    if not path.is_file():
        return {}, None
    import tomllib  # only when there is a file: start-up does not pay for the parser otherwise

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return {}, f"keymap {path} ignored: {exc}"
    keymap = {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
    bad = [k for k, v in data.items() if not isinstance(v, str)]
    return keymap, (f"keymap {path}: ignored non-string entries {', '.join(bad)}" if bad else None)
