"""Atomic file writes: the one way plumecast puts a file in place."""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The temporary file keeps the target's suffix (writers that infer a format from it work
    unchanged) and gets the usual file mode; on any error it is removed and ``path`` is
    left as it was, so a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


STALE_TEMPORARY_S = 3600.0  # a cache write takes seconds: an hour-old temporary belongs to a killed writer


def remove_stale_temporaries(folder: str | Path, older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Remove the temporaries :func:`atomic_path` left in ``folder`` when its writer was killed.

    Only hidden files named as ``atomic_path`` names them (``.<name>.<random><suffix>``)
    and untouched for ``older_than_s`` seconds go, so a write in progress elsewhere (another
    generation into the same cache) keeps its file. Returns what was removed.
    """
    folder = Path(folder)
    now = time.time()
    removed = []
    for tmp in folder.glob(".*.*") if folder.is_dir() else ():
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # removed meanwhile by its writer or another cleaner
            pass
    return removed
