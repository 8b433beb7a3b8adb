"""Pre-flight checks: can an output be written, and does the work fit in memory?

Both run before any long work, so a bad ``--out`` or a grid too fine for the machine stops
a command in a second with a message, instead of a traceback after the simulation.

* :func:`output_problem` says why a path cannot be written (a directory where a file is
  meant, a file where a folder is meant, a folder that cannot be created or written), by
  creating and removing a probe file in the nearest existing folder: permission bits
  lie for root and for read-only or virtual file systems such as ``/proc``.
* :func:`available_memory_bytes` is what the machine can still give: ``psutil`` when it is
  installed, else ``MemAvailable`` of ``/proc/meminfo``, lowered to a cgroup's remaining
  limit when the process runs in a container. :func:`require_memory` refuses an estimate
  above it, with both figures in the message. ``PLUMECAST_SKIP_MEMORY_CHECK=1`` turns
  the refusal off (for a machine whose swap or overcommit you trust).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["PreflightError", "output_problem", "available_memory_bytes", "require_memory", "format_bytes"]

SKIP_ENV = "PLUMECAST_SKIP_MEMORY_CHECK"


class PreflightError(ValueError):
    """Work that cannot be done as asked (output not writable, not enough memory)."""


def _probe_dir(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else the reason."""
    try:
        fd, name = tempfile.mkstemp(prefix=".plumecast-probe-", dir=folder)
    except OSError as e:
        return e.strerror or type(e).__name__
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


def output_problem(path: str | Path, kind: str = "file") -> str | None:
    """Why ``path`` cannot be written as a ``kind`` ("file" or "dir"), or None when it can.

    Nothing is left behind: the probe file is removed and no folder is created.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    path = Path(path)
    if kind == "file":
        if path.is_dir():
            return f"{path} is a directory; give a file name such as {path / 'out.nc'}"
        if path.exists() and not path.is_file():
            return f"{path} exists and is not a regular file"
    elif path.exists() and not path.is_dir():
        return f"{path} exists and is not a directory"
    # The nearest existing folder: the path itself (a directory output), else an ancestor.
    folder = path if (kind == "dir" and path.is_dir()) else path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        return f"cannot create {path}: {folder} is a file, not a directory"
    reason = _probe_dir(folder)
    if reason is not None:
        return f"cannot write {path}: {folder} does not accept new files ({reason})"
    if kind == "file" and path.is_file() and not os.access(path, os.W_OK) and os.geteuid() != 0:
        return f"cannot write {path}: the file is read-only"
    return None


def _cgroup_left() -> int | None:
    """Bytes left under this process's cgroup memory limit, when one is set."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw == "max":
                return None
            limit = int(raw)
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # "no limit" on cgroup v1
            return None
        return max(0, limit - usage)
    return None


def available_memory_bytes() -> int | None:
    """Memory the machine can still give this process (bytes), or None when unknown."""
    avail = None
    try:
        import psutil  # optional

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            avail = None
    left = _cgroup_left()
    if left is not None:
        avail = left if avail is None else min(avail, left)
    return avail


def format_bytes(n: float) -> str:
    """``1.5 GiB``; beyond a thousand TiB in powers of ten (``3.3e+06 TiB``)."""
    if n >= 1000 * (1 << 40):
        return f"{n / (1 << 40):.2g} TiB"
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def require_memory(needed_bytes: float, what: str, hint: str = "") -> None:
    """Raise PreflightError when ``needed_bytes`` exceeds the memory available now.

    ``what`` says what needs it ("a 3D grid of ..."); ``hint`` what to change. Nothing is
    refused when the available memory is unknown or the check is switched off.
    """
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        return
    avail = available_memory_bytes()
    if avail is None or needed_bytes <= avail:
        return
    raise PreflightError(
        f"{what} needs about {format_bytes(needed_bytes)} of memory, but this machine has "
        f"{format_bytes(avail)} available" + (f"; {hint}" if hint else "")
        + f" (set {SKIP_ENV}=1 to try anyway)"
    )
