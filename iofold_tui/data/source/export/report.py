"""What loading a D1 export found: ``LoadReport`` (kept beside the cached working copy as JSON) and
its errors."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from iofold_tui.data.sanitize import one_line

MAX_ERRORS_KEPT = 200
CACHE_FORMAT = 1


@dataclass
class LoadError:
    line: int
    message: str
    snippet: str  # already passed through sanitize.one_line


@dataclass
class LoadReport:
    source: str
    size: int = 0
    seconds: float = 0.0
    statements: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # rows inserted per table
    tables: list[str] = field(default_factory=list)  # CREATE TABLE seen, in order
    views: list[str] = field(default_factory=list)
    indexes: int = 0
    triggers: int = 0
    internal_tables: list[str] = field(default_factory=list)  # d1_migrations, _cf_*, sqlite_sequence
    errors: list[LoadError] = field(default_factory=list)  # the first MAX_ERRORS_KEPT
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    from_cache: bool = False

    @property
    def has_schema(self) -> bool:
        return bool(self.tables)

    @property
    def has_data(self) -> bool:
        return any(n for table, n in self.rows.items() if not is_internal(table))

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("from_cache")
        return json.dumps({"format": CACHE_FORMAT, **data}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> LoadReport:
        data = json.loads(text)
        if data.pop("format", None) != CACHE_FORMAT:
            raise ValueError("cache format changed")
        data["errors"] = [LoadError(**e) for e in data["errors"]]
        return cls(**data)

    def summary_lines(self) -> list[str]:
        """Short human-readable lines (already safe to show) for the UI/CLI."""
        how = "reused cached working copy" if self.from_cache else f"loaded in {self.seconds:.1f} s"
        lines = [f"D1 export: {self.statements:,} statements, {self.size / 1e6:,.1f} MB ({how})"]
        if self.has_data:
            top = sorted(self.rows.items(), key=lambda kv: -kv[1])[:6]
            lines.append("rows: " + ", ".join(f"{one_line(t, 40)} {n:,}" for t, n in top)
                         + (", …" if len(self.rows) > 6 else ""))
        elif self.has_schema:
            lines.append("export holds the schema only, no rows (made with --no-data?)")
        if self.has_schema and self.has_data and not self.indexes:
            lines.append("export has no indexes (made with --table?): browsing may be slower")
        if self.internal_tables:
            lines.append("internal tables: " + ", ".join(one_line(t, 40) for t in self.internal_tables))
        if self.error_count:
            first = self.errors[0]
            lines.append(f"{self.error_count:,} statement(s) rejected by SQLite and skipped; first at line "
                         f"{first.line}: {one_line(first.message, 120)}")
        lines.extend(one_line(w, 300) for w in self.warnings)
        return lines


def is_internal(table: str) -> bool:
    """Tables wrangler/D1/SQLite keep for themselves, not the user's data."""
    return table in ("sqlite_sequence", "d1_migrations") or table.startswith("_cf_")
