"""The published data files: a registry of their sha256 (shipped with the package), and list/verify/fetch.

``data_registry.txt`` (``sha256  relative/path`` per line, built from the release's ``SHA256SUMS.txt``) names
every file the presets and release loaders read. :func:`fetch` copies or downloads them with ``pooch`` from a
local folder, a ``file://`` URL or an ``http(s)://`` base URL into the data folder
(:func:`cevnsjax.io.location.data_root`), checking each hash. :func:`check_file` is called by the table
readers: a registered file whose content changed is an error; files outside the registry are not checked.
"""

from __future__ import annotations

import shutil
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import pooch

from cevnsjax.io.location import FETCH_HINT, data_root

__all__ = ["DataIntegrityError", "registry", "datasets", "select", "verify", "fetch", "check_file", "file_sha256"]


class DataIntegrityError(ValueError):
    """A registered data file whose sha256 differs from the published one."""


@cache
def registry() -> dict[str, str]:
    """``{relative path: sha256}`` of every published data file (from the packaged ``data_registry.txt``)."""
    text = resources.files("cevnsjax.io").joinpath("data_registry.txt").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            sha, name = line.split(maxsplit=1)
            out[name.strip().removeprefix("./")] = sha.lower()
    return out


def datasets() -> dict[str, list[str]]:
    """Files of the registry grouped by data set (their top folder)."""
    out: dict[str, list[str]] = {}
    for name in registry():
        out.setdefault(name.split("/", 1)[0], []).append(name)
    return out


def select(names) -> list[str]:
    """Registry entries matching ``names`` (file paths or data-set folders; all when empty)."""
    reg = registry()
    if not names:
        return list(reg)
    out = []
    for n in names:
        n = n.strip("/")
        hit = [k for k in reg if k == n or k.startswith(n + "/")]
        if not hit:
            raise ValueError(f"{n!r} is neither a data set nor a file of the registry; data sets: {', '.join(datasets())}")
        out += [k for k in hit if k not in out]
    return out


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path) -> str:
    """sha256 of a file, cached by (path, size, mtime) so repeated loads of an unchanged file are free."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = pooch.file_hash(str(p), alg="sha256")
    return _HASHES[key]


@cache
def _by_basename() -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for k in registry():
        parts = tuple(k.split("/"))
        out.setdefault(parts[-1], []).append(parts)
    return out


def registry_key(path) -> str | None:
    """The registry entry a file stands for (its trailing folders/name match one), or ``None`` (a user file)."""
    parts = Path(path).resolve().parts
    for kp in _by_basename().get(parts[-1] if parts else "", []):
        if parts[-len(kp):] == kp:
            return "/".join(kp)
    return None


def check_file(path) -> None:
    """Raise :class:`DataIntegrityError` when a registered data file differs from the published one."""
    key = registry_key(path)
    if key is None:
        return
    actual, expected = file_sha256(path), registry()[key]
    if actual != expected:
        raise DataIntegrityError(
            f"{str(path)!r} (published file {key}) has sha256 {actual[:16]}..., expected {expected[:16]}...: "
            f"the copy is corrupted or edited; restore it with `{FETCH_HINT}` (check all: `cevnsjax data verify`)"
        )


def verify(root=None, names=()) -> dict[str, str]:
    """``{file: "ok" | "missing" | "mismatch"}`` for the registered files under ``root`` (default: the data folder)."""
    root = Path(root) if root is not None else data_root()
    reg = registry()
    out = {}
    for name in select(names):
        p = root / name
        out[name] = "missing" if not p.is_file() else ("ok" if file_sha256(p) == reg[name] else "mismatch")
    return out


def _source_url(source: str) -> str:
    """A base URL ending in '/' for a local folder, ``file://`` or ``http(s)://`` source."""
    scheme = urlparse(source).scheme
    if scheme in ("http", "https", "file"):
        return source.rstrip("/") + "/"
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"--from {source!r}: unsupported scheme {scheme!r}; use a folder, file://, http:// or https://")
    p = Path(source).expanduser().resolve()
    if not p.is_dir():
        raise FileNotFoundError(f"--from {source!r}: folder {str(p)!r} does not exist; give the folder holding the "
                                "published data (its sub-folders coherent_csi_2017/, dresden_ii/, ...) or a URL")
    return p.as_uri() + "/"


def _file_downloader(url, output_file, pup):  # pooch downloader for file:// URLs
    src = Path(url2pathname(unquote(urlparse(url).path)))
    if not src.is_file():
        raise FileNotFoundError(f"{str(src)!r} not found in the --from source")
    if hasattr(output_file, "write"):
        with open(src, "rb") as f:
            shutil.copyfileobj(f, output_file)
    else:
        shutil.copyfile(src, output_file)


def fetch(source: str, root=None, names=(), progress=None) -> list[Path]:
    """Copy/download the registered files (all, or the data sets/files ``names``) from ``source`` into ``root``.

    ``source``: a local folder, ``file://`` URL or ``http(s)://`` base URL laid out like the release
    (``<source>/dresden_ii/...``). Files already present with the right hash are kept; each fetched file's
    sha256 is checked by pooch (a mismatch raises ``ValueError`` and leaves no file behind).
    """
    root = Path(root) if root is not None else data_root()
    base = _source_url(source)
    wanted = select(names)
    root.mkdir(parents=True, exist_ok=True)
    pooch.get_logger().setLevel("WARNING")  # no 'Downloading ...' line per file
    pup = pooch.create(path=root, base_url=base, registry={k: f"sha256:{v}" for k, v in registry().items()})
    downloader = _file_downloader if base.startswith("file:") else None
    out = []
    for name in wanted:
        out.append(Path(pup.fetch(name, downloader=downloader)))
        if progress is not None:
            progress(name)
    return out


def missing_message(path) -> str:
    """One line naming a missing data file and the command that gets it."""
    key = registry_key(path)
    what = f"published file {key}" if key else "this file"
    return f"{str(path)!r} not found; {what} comes with the published data: `{FETCH_HINT}` (data folder: $CEVNSJAX_DATA)"

