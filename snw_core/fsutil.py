"""Small file-system helpers: atomic writes (temp file + rename) and the project root.

A temporary file from ``mkstemp`` (or folder from ``mkdtemp``) is private (mode 0600 / 0700), and renaming keeps
that mode; :func:`default_mode` gives it the mode any new file gets from the user's umask (0644 / 0755 under
the usual umask 022) before it is renamed into place, so a dashboard under another account, or a shared run
store, can read it.
"""
from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import threading
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_npz", "read_npz",
           "atomic_writer", "project_root", "current_umask", "default_mode", "temp_writer", "temp_host"]

_UMASK_LOCK = threading.Lock()


def project_root() -> Path:
    """The folder that holds ``snw_core/`` (the repository root)."""
    return Path(__file__).resolve().parent.parent


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:          # elsewhere: set and restore (process-wide, so under a lock)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(path, folder: bool | None = None) -> Path:
    """Give ``path`` the mode a newly created file (0666) or folder (0777) gets under the current umask."""
    path = Path(path)
    if folder is None:
        folder = path.is_dir()
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())
    return path


def temp_host() -> str:
    """This machine's name as temp files written here carry it."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", platform.node()) or "host"


# ``.{name}.{host}~{pid}.{random}.tmp{suffix}``: the writer's host and process id, so that a temp file left by a
# process that was killed outright (SIGKILL, a lost machine) can be told from one that is being written
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9.-]+)~(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp(?P<suffix>\.[^.]*)?$")


def temp_writer(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of the process that wrote temp file ``name`` (made by :class:`atomic_writer`), or None."""
    m = _TEMP.match(name)
    return (m["host"], int(m["pid"])) if m else None


class atomic_writer:
    """Context manager yielding a temp path next to ``path``; renamed onto ``path`` only on success.

    >>> with atomic_writer("x.keras") as tmp:      # doctest: +SKIP
    ...     model.save(tmp)
    """

    def __init__(self, path, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = suffix if suffix is not None else self.path.suffix

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{temp_host()}~{os.getpid()}.", suffix=".tmp" + self.suffix,
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                default_mode(self.tmp, folder=False)
                os.replace(self.tmp, self.path)
            except BaseException:
                self.tmp.unlink(missing_ok=True)
                raise
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    with atomic_writer(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    """Strict JSON (NaN and infinities become null), written atomically."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, allow_nan=False, default=_json_default) + "\n")


def _finite(o):
    import math
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if hasattr(o, "dtype") and getattr(o, "ndim", 1) == 0:   # numpy scalar
        return _finite(o.item())
    return o


def _json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_npz(path, arrays: dict) -> None:
    """``np.savez_compressed`` of ``arrays`` (no object arrays, so no pickles), written atomically."""
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_npz(path) -> dict:
    """Every array of an ``.npz`` file, loaded without pickles."""
    import numpy as np
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
