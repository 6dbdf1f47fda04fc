"""Resolve a source's ``path`` option (a file, a folder or a glob) to files, sorted."""

from __future__ import annotations

import glob
from pathlib import Path

from evidence.errors import CollectorError


def resolve_files(pattern: str, base_dir: Path) -> list[Path]:
    """Files matching ``pattern`` (relative to ``base_dir``); an error when none match."""
    raw = Path(pattern).expanduser()
    full = raw if raw.is_absolute() else base_dir / raw
    if full.is_dir():
        files = sorted(p for p in full.iterdir() if p.is_file() and not p.name.startswith("."))
    elif any(ch in pattern for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
    else:
        files = [full] if full.exists() else []
    if not files:
        raise CollectorError(
            f"no file matches {pattern!r}", scope=pattern, remedy="check the source's path"
        )
    return files
