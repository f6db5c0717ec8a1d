"""What opening a source gives: the database, its schema and where its label history lives. Its own
module so that every way of opening (source/loader.py, the live D1 source) builds one without importing
the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from iofold_tui.data.db import Database
from iofold_tui.data.source.schema import SchemaInfo

SourceKind = Literal["sqlite", "d1-export", "wrangler-dir", "demo", "d1-remote"]


@dataclass
class OpenedSource:
    kind: SourceKind
    origin: Path  # what the user named
    db: Database
    schema: SchemaInfo
    history_path: Path  # label history sidecar (never inside the user's tables)
    notes: list[str] = field(default_factory=list)  # load report lines, warnings to show once

    @property
    def label(self) -> str:
        return self.origin.name if self.kind != "demo" else "demo database"

    @property
    def read_only_reason(self) -> str | None:
        return self.db.read_only_reason
