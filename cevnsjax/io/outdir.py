"""Safe output folders: one run per folder, an exclusive lock, atomic writes, a content fingerprint.

:class:`OutputFolder` is entered before any computation. It refuses a folder that holds another run
(a marker file names the command) unless ``overwrite`` (the folder is then cleared) or, for the same
command, ``resume``; it takes an exclusive :func:`fcntl.flock` lock so that two processes cannot write
into one folder (the second gets a one-line :class:`OutputFolderError`), and removes temporary files
left by a killed run. Every file is written through a unique temporary name in the same folder and
:func:`os.replace` (atomic on POSIX): :func:`atomic_write_text`, :func:`atomic_write_bytes`,
:func:`atomic_write_json` and, for writers that take a path (netCDF, PNG), :func:`atomic_path`.

:func:`fingerprint` identifies a computation by content: the spec's canonical contents, the bytes of
every data file it read and the package version (sha256, hex).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import time
import uuid
from pathlib import Path

__all__ = ["OutputFolder", "OutputFolderError", "MARKER", "LOCK", "atomic_path", "atomic_write_bytes",
           "atomic_write_text", "atomic_write_json", "json_safe", "fingerprint", "clean_stale_temps"]

MARKER = ".cevnsjax-run.json"
LOCK = ".cevnsjax.lock"
_TMP_TAG = ".cjtmp"


class OutputFolderError(ValueError):
    """The output folder cannot be used (another run's results, a concurrent run, not writable)."""


# ------------------------------------------------------------------------------------- atomic writes
def _temp_name(path: Path) -> Path:
    # keeps the suffix (writers such as matplotlib and xarray choose the format from it)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}{_TMP_TAG}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a unique temporary path beside ``path``; on success it replaces ``path`` atomically, on an
    exception it is removed. For writers that take a path: ``with atomic_path(p) as t: fig.savefig(t)``."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise OSError(f"{path}: the writer produced no file")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a unique temporary file, fsync and :func:`os.replace`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode())


def json_safe(obj):
    """``obj`` with every NaN or infinite float replaced by ``None`` (JSON has no NaN/Infinity);
    NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # NumPy / JAX arrays and scalars
        return json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path, obj, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (non-finite numbers as ``null``) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=indent, allow_nan=False))


def clean_stale_temps(folder) -> list[Path]:
    """Remove the temporary files of killed writers under ``folder`` (this module's ``*.cjtmp*`` and the
    scan's ``NAME.PID.tmp``). Call only while holding the folder's lock. Returns the removed paths."""
    removed = []
    for p in Path(folder).rglob("*"):
        n = p.name
        stale = _TMP_TAG in n or (n.endswith(".tmp") and n[:-4].rsplit(".", 1)[-1].isdigit())
        if stale and p.is_file():
            p.unlink()
            removed.append(p)
    return removed


# -------------------------------------------------------------------------------------- fingerprint
def _hash_file(h, path: Path):
    h.update(str(path.name).encode() + b"\0")
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def fingerprint(spec, data_files=(), version: str | None = None, extra=None) -> str:
    """sha256 (hex) over the spec's canonical contents (a dict, or a file's bytes), the bytes of every data
    file (a folder: every file under it, in sorted order), the package version and ``extra`` (JSON)."""
    if version is None:
        from cevnsjax import __version__ as version
    h = hashlib.sha256()
    if isinstance(spec, dict):
        h.update(json.dumps({k: v for k, v in spec.items() if k != "_base"}, sort_keys=True, default=str).encode())
    else:
        h.update(Path(spec).read_bytes())
    files = set()
    for f in data_files:
        f = Path(f)
        files.update(p for p in f.rglob("*") if p.is_file()) if f.is_dir() else files.add(f)
    for f in sorted(files, key=lambda p: str(p.resolve())):
        h.update(b"\0file\0")
        if f.exists():
            _hash_file(h, f)
        else:
            h.update(b"missing:" + str(f).encode())
    h.update(b"\0version\0" + str(version).encode())
    h.update(b"\0extra\0" + json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ output folder
class OutputFolder:
    """Context manager that owns an output folder for one run of ``command`` (see the module docstring).

    Args:
        path: the folder (created if missing).
        command: the command writing it (``"fit"``, ``"scan"``, ...); recorded in the marker file.
        overwrite: clear a folder that holds another cevnsjax run.
        resume: keep a folder holding a run of the same ``command`` (a scan's finished chunks).

    Attributes after entering: ``path``, ``resumed`` (it held a run of this command and ``resume``),
    ``previous`` (the old marker's contents, or None).
    """

    def __init__(self, path, command: str, overwrite: bool = False, resume: bool = False):
        self.path = Path(path)
        self.command = command
        self.overwrite = overwrite
        self.resume = resume
        self.resumed = False
        self.previous = None
        self._lock_fh = None
        self._created = False
        self.failed = False

    def _fail(self, what: str):
        raise OutputFolderError(f"--out {str(self.path)!r}: {what}")

    def __enter__(self) -> OutputFolder:
        p = self.path
        if p.exists() and not p.is_dir():
            self._fail("is a file, not a folder; choose a folder name")
        try:
            self._created = not p.exists()
            p.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            self._fail(f"cannot be created ({err.strerror or err}); choose a writable location")
        if not os.access(p, os.W_OK | os.X_OK):
            self._fail("is not writable; choose a writable location")
        fh = open(p / LOCK, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            who = fh.read().strip() or "another process"
            fh.close()
            self._fail(f"another cevnsjax run ({who}) is writing to this folder; wait for it to finish or "
                       "choose another --out")
        fh.seek(0)
        fh.truncate()
        fh.write(f"{self.command}, pid {os.getpid()}")
        fh.flush()
        self._lock_fh = fh
        try:
            self._claim()
        except BaseException:
            self._release()
            raise
        return self

    def _contents(self):
        return [q for q in self.path.iterdir() if q.name not in (LOCK, MARKER) and _TMP_TAG not in q.name]

    def _claim(self):
        p = self.path
        marker = p / MARKER
        if marker.exists():
            try:
                self.previous = json.loads(marker.read_text())
            except (OSError, ValueError):
                self.previous = {"command": "unknown"}
        elif (p / "manifest.json").exists() and (p / "chunks").is_dir():  # a scan from before markers existed
            self.previous = {"command": "scan"}
        held = self._contents()
        if self.previous is not None or held:
            old = (self.previous or {}).get("command")
            if self.overwrite:
                if self.previous is None:
                    self._fail(f"holds {len(held)} files not written by cevnsjax (e.g. {held[0].name!r}); "
                               "--overwrite clears only cevnsjax output folders: choose a new or empty folder")
                for q in held:
                    shutil.rmtree(q) if q.is_dir() and not q.is_symlink() else q.unlink()
                self.previous = None
            elif self.resume and old == self.command:
                self.resumed = True
            else:
                state = (self.previous or {}).get("state", "")
                what = (f"holds the results of a {state + ' ' if state else ''}`{old}` run" if old
                        else f"is not empty (e.g. {held[0].name!r})")
                fix = "pass --overwrite to replace them" if old else "choose a new or empty folder"
                if old and self.command in ("scan", "unfold") and old == self.command:
                    fix += f", or --resume to continue that {old}"
                self._fail(f"{what}; {fix}, or choose another --out")
        clean_stale_temps(p)
        from cevnsjax import __version__

        atomic_write_json(marker, {"command": self.command, "state": "running", "pid": os.getpid(),
                                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "version": __version__})

    def _release(self):
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __exit__(self, exc_type, exc, tb):
        try:
            marker = self.path / MARKER
            failed = exc_type is not None or self.failed
            if not failed:
                rec = json.loads(marker.read_text())
                rec.update(state="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                atomic_write_json(marker, rec)
            elif not self._contents() and not self.resumed and self.previous is None:  # nothing written: no trace
                marker.unlink(missing_ok=True)
                if self._created:
                    (self.path / LOCK).unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        self.path.rmdir()
            else:
                rec = json.loads(marker.read_text())
                rec.update(state="failed")
                atomic_write_json(marker, rec)
        finally:
            self._release()
        return False
