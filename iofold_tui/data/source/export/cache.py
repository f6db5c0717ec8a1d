"""Open ``wrangler d1 export`` files (spec §6) as a SQLite working copy, through a cache.

Three layers: ``statements.iter_statements`` (a streaming splitter whose memory is bounded by the largest
statement), ``load.load_export`` (statement by statement into a temp file, renamed when done;
statements SQLite rejects are reported, the rest still loads) and ``open_export`` here (a cache keyed by
the export's size, mtime and sampled content, so re-opening an unchanged export is instant). The ``.sql``
is only ever opened for reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from iofold_tui.data import paths
from iofold_tui.data.errors import SourceError
from iofold_tui.data.source.export.load import load_export
from iofold_tui.data.source.export.pipeline import Progress
from iofold_tui.data.source.export.report import CACHE_FORMAT, LoadReport

_SAMPLE_BLOCK = 16384
_SAMPLES = 32
_FULL_HASH_LIMIT = 4 << 20


def export_key(sql_path: Path) -> str:
    """Size + mtime + a hash of sampled blocks (whole file when small): milliseconds even for 1 GB."""
    st = sql_path.stat()
    digest = hashlib.blake2b(f"{CACHE_FORMAT}:{st.st_size}:{st.st_mtime_ns}".encode(), digest_size=12)
    with sql_path.open("rb") as fh:
        if st.st_size <= _FULL_HASH_LIMIT:
            digest.update(fh.read())
        else:
            for i in range(_SAMPLES + 1):
                fh.seek((st.st_size - _SAMPLE_BLOCK) * i // _SAMPLES)
                digest.update(fh.read(_SAMPLE_BLOCK))
    return digest.hexdigest()


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:40] or "export"


def _evict_older(folder: Path, source: str, keep: Path) -> None:
    """Drop working copies of earlier versions of the same export (same path, other content)."""
    for report_file in folder.glob("*.report.json"):
        db = report_file.with_name(report_file.name.removesuffix(".report.json") + ".sqlite")
        if db == keep:
            continue
        try:
            if json.loads(report_file.read_text()).get("source") == source:
                db.unlink(missing_ok=True)
                report_file.unlink(missing_ok=True)
        except (OSError, ValueError):
            continue


def open_export(sql_path: Path, *, progress: Progress | None = None) -> tuple[Path, LoadReport]:
    """The working copy of ``sql_path`` from the cache, loading it first if the export is new or changed."""
    sql_path = Path(sql_path)
    try:
        key = export_key(sql_path)
    except OSError as exc:
        raise SourceError(sql_path, f"cannot read: {exc.strerror or exc}") from None
    folder = paths.cache_dir() / "exports"
    db = folder / f"{_safe_stem(sql_path)}-{key}.sqlite"
    report_file = db.with_name(db.name.removesuffix(".sqlite") + ".report.json")
    if db.is_file() and report_file.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            report = LoadReport.from_json(report_file.read_text())
            report.from_cache = True
            return db, report
    report = load_export(sql_path, db, progress=progress)
    tmp = report_file.with_name(f"{report_file.name}.{os.getpid()}")
    tmp.write_text(report.to_json())
    os.replace(tmp, report_file)
    _evict_older(folder, report.source, db)
    return db, report
