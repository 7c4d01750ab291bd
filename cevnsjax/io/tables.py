"""Shared host-side readers: text tables and YAML parameter files.

:func:`read_table` is the package's one numeric-table reader: the data-release loaders here, the
quenching and response loaders (``cevnsjax.detector.quenching``, ``cevnsjax.detector.response``) and
:func:`cevnsjax.sources.tabulated.read_two_column` all parse through it.

Every reader raises ``ValueError`` whose message starts ``<file>:<line>:`` and says which
column or key is wrong and how to fix it; a missing file raises ``FileNotFoundError``.
"""

from __future__ import annotations

import bz2
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import yaml

__all__ = [
    "Table",
    "read_table",
    "to_grid",
    "uniform_edges",
    "frozen",
    "read_yaml",
    "dataset_dir",
    "require_file",
    "yaml_number",
]


def frozen(a, dtype=None) -> np.ndarray:
    """Return a read-only (write-protected) numpy copy of ``a``."""
    out = np.array(a, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


# ----------------------------------------------------------------------------------------------
# paths


def dataset_dir(path, name: str, marker: str) -> Path:
    """Resolve the folder of one data set.

    ``path`` may be the published data folder (holding ``name/``), the data-set folder itself,
    or any file inside it. ``marker`` is a file that must exist in the resolved folder.
    """
    p = Path(path).expanduser()
    if p.is_file():
        p = p.parent
    if (p / name).is_dir():
        p = p / name
    if not (p / marker).is_file():
        raise FileNotFoundError(
            f"{marker!r} not found in {str(p)!r}; pass the published data folder (e.g. shared/data), "
            f"its {name}/ folder, or a file inside it (get the data: `cevnsjax data fetch --from PATH_OR_URL`)"
        )
    return p.resolve()


def require_file(folder: Path, name: str) -> Path:
    """Return ``folder / name``, raising ``FileNotFoundError`` naming it when absent."""
    p = Path(folder) / name
    if not p.is_file():
        raise FileNotFoundError(_missing(p))
    return p


def _missing(path: Path) -> str:
    from cevnsjax.io.datasets import missing_message

    return missing_message(path)


def _check(path: Path) -> None:
    """Published data files must match their registered sha256 (:func:`cevnsjax.io.datasets.check_file`)."""
    from cevnsjax.io.datasets import check_file

    check_file(path)


# ----------------------------------------------------------------------------------------------
# text tables


@dataclass(frozen=True)
class Table:
    """A numeric text table: ``data[i, j]`` is row ``i``, column ``names[j]``.

    ``lines[i]`` is the 1-based line number of row ``i`` in ``path``; ``labels[i]`` the text of the
    last comment line above it (``""`` when none); ``header`` the skipped header line, if any.
    """

    path: Path
    names: tuple[str, ...]
    data: np.ndarray
    lines: np.ndarray
    labels: tuple[str, ...]
    header: str | None

    def __len__(self) -> int:
        return self.data.shape[0]

    def col(self, name: str) -> np.ndarray:
        """Column ``name`` as a read-only, contiguous float64 array."""
        return frozen(self.data[:, self.names.index(name)])

    def where(self, row: int | None, name: str | None = None) -> str:
        """``"file:line: column j ('name')"`` prefix for messages about row ``row``."""
        loc = f"{self.path}" if row is None else f"{self.path}:{int(self.lines[row])}"
        if name is not None:
            loc += f": column {self.names.index(name) + 1} ({name!r})"
        return loc


_SEPARATORS = re.compile(r"[,;]")


def _split(line: str, delimiter: str | None) -> list[str]:
    """Fields of ``line``: on ``delimiter`` if given, else on commas/semicolons when the line has
    one, else on whitespace. Fields are stripped; empty fields (``1,,3``) are kept."""
    if delimiter is not None:
        return [f.strip() for f in line.split(delimiter)]
    if _SEPARATORS.search(line):
        return [f.strip() for f in _SEPARATORS.split(line)]
    return line.split()


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _read_text(path: Path) -> str:
    """Text of ``path`` (``.bz2`` decompressed); undecodable bytes become U+FFFD so that they are
    reported, with their line, as fields that are not numbers."""
    if path.suffix != ".bz2":
        return path.read_text(encoding="utf-8", errors="replace")
    try:
        with bz2.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc}); give a plain or .bz2 text table") from None


def _allowed_counts(ncols) -> tuple[int, ...]:
    allowed = (ncols,) if isinstance(ncols, int) else tuple(sorted(set(ncols)))
    if not allowed or any(not isinstance(n, (int, np.integer)) or n < 1 for n in allowed):
        raise ValueError(f"ncols={ncols!r}: give a column count >= 1 or an iterable of them")
    return tuple(int(n) for n in allowed)


def _describe_counts(allowed: tuple[int, ...], at_least: bool) -> str:
    if at_least:
        return f"at least {allowed[0]}"
    if len(allowed) > 3 and allowed == tuple(range(allowed[0], allowed[-1] + 1)):
        return f"{allowed[0]} to {allowed[-1]}"
    return " or ".join(map(str, allowed))


def read_table(
    path,
    names: Iterable[str] = (),
    *,
    ncols: int | Iterable[int] | None = None,
    extra_columns: bool = False,
    header: bool | str = "auto",
    nonnegative: Iterable[str] = (),
    counts: Iterable[str] = (),
    delimiter: str | None = None,
    comment: str = "#",
) -> Table:
    """Read a numeric text table: the one reader behind every table in the package.

    * Blank lines and lines starting with ``comment`` are skipped; text after ``comment`` on a data
      line is ignored. Files ending in ``.bz2`` are decompressed.
    * Fields are split on commas or semicolons when a line has one, else on whitespace (or on
      ``delimiter``); empty fields (``1,,3``) are errors.
    * ``header``: ``True`` skips the first non-comment line, ``False`` never skips, ``"auto"`` skips
      it only when none of its fields is a number (e.g. ``Photoelectrons (PEs),Arrival time (us),Counts``).
    * Column count: by default exactly ``len(names)``. ``ncols`` (an int or an iterable of ints, e.g.
      ``(4, 6)`` or ``range(2, 20)``) lists the allowed counts instead; ``names`` then name the
      leading columns and the others are called ``col<k>`` (1-based). ``extra_columns=True`` allows
      any count >= ``len(names)``; the columns beyond the named ones are ignored (not parsed, not
      returned). Either way every data row must have as many fields as the first one.
    * ``nonnegative`` columns must be >= 0; ``counts`` columns must be non-negative integers.
    * NaN and infinities are always rejected.

    Every problem raises ``ValueError`` starting ``<file>:<line>:`` that names the column (number
    and name), the field found and how to fix it; a missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    names = tuple(names)
    if extra_columns and ncols is not None:
        raise ValueError("give either ncols= (allowed column counts) or extra_columns=True, not both")
    if extra_columns and not names:
        raise ValueError("extra_columns=True needs the names of the leading columns to read")
    if ncols is None:
        if not names:
            raise ValueError("give the column names or ncols= (the allowed column counts)")
        allowed = (len(names),)
    else:
        allowed = _allowed_counts(ncols)
        if names and len(names) > allowed[0]:
            raise ValueError(f"{len(names)} column names {names} but ncols={ncols!r} allows {allowed[0]} columns")
    nonneg = set(nonnegative) | set(counts)
    counts = set(counts)
    unknown = nonneg - set(names)
    if unknown:
        raise ValueError(f"unknown column name(s) {sorted(unknown)}; columns are {names}")
    if not path.is_file():
        raise FileNotFoundError(_missing(path))
    text = _read_text(path)
    want = _describe_counts((len(names),) if extra_columns else allowed, extra_columns)
    more = ", ..." if extra_columns or (names and allowed[-1] > len(names)) else ""
    layout = f" ({', '.join(names)}{more})" if names else ""
    sep = "commas, semicolons or whitespace" if delimiter is None else repr(delimiter)
    rows: list[list[float]] = []
    lines: list[int] = []
    labels: list[str] = []
    head: str | None = None
    last_comment = ""
    first = True
    width = None  # fields per row, fixed by the first data row
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith(comment):
            last_comment = stripped[len(comment):].strip()
            continue
        body = stripped.split(comment, 1)[0].strip()
        fields = _split(body, delimiter)
        if first:
            first = False
            if header is True or (header == "auto" and not any(_is_number(f) for f in fields)):
                head = stripped
                continue
        where = f"{path}:{lineno}"
        n = len(fields)
        if (n < len(names)) if extra_columns else (n not in allowed):
            raise ValueError(
                f"{where}: expected {want} columns{layout} separated by {sep}, found {n} in "
                f"{stripped!r}; fix this line or comment it out with {comment!r}"
            )
        if width is not None and n != width:
            raise ValueError(
                f"{where}: expected {width} columns like the first data row (line {lines[0]}), found {n} "
                f"in {stripped!r}; every row needs the same columns{layout}: fix this line or comment "
                f"it out with {comment!r}"
            )
        width = n
        row = []
        for j, field in enumerate(fields[:len(names)] if extra_columns else fields):
            name = names[j] if j < len(names) else None
            loc = f"{where}: column {j + 1}" + (f" ({name!r})" if name is not None else "")
            try:
                v = float(field)
            except ValueError:
                if field == "":
                    raise ValueError(f"{loc}: '' is not a number (empty field); put a number there or "
                                     "remove the stray separator") from None
                raise ValueError(
                    f"{loc}: {field!r} is not a number; replace it with a number (e.g. 1.5e-3) or "
                    f"comment the line out with {comment!r}"
                ) from None
            if not math.isfinite(v):
                raise ValueError(f"{loc}: {field!r} is not finite; replace it with a finite number "
                                 "or remove the row")
            if name in nonneg and v < 0:
                what = "counts" if name in counts else "non-negative values"
                raise ValueError(f"{loc}: negative value {field!r} where {what} are expected; "
                                 "restore the published (>= 0) value")
            if name in counts and v != round(v):
                raise ValueError(f"{loc}: non-integer {field!r} where counts are expected; "
                                 "restore the published integer count")
            row.append(v)
        rows.append(row)
        lines.append(lineno)
        labels.append(last_comment)
    if not rows:
        raise ValueError(f"{path}: no data rows found; expected {want} columns{layout}")
    ncol = len(rows[0])
    full = names + tuple(f"col{j + 1}" for j in range(len(names), ncol))
    _check(path)  # after parsing: a parse error (file:line) is the more precise message for an edited file
    return Table(path, full, frozen(rows, float), frozen(lines, np.int64), tuple(labels), head)


def uniform_edges(centres, where: str, what: str, rtol: float = 1e-6) -> np.ndarray:
    """Bin edges (n + 1) from uniformly spaced bin centres; ``ValueError`` if not uniform."""
    c = np.asarray(centres, dtype=float)
    if c.size < 2:
        raise ValueError(f"{where}: need at least 2 {what} bin centres, found {c.size}")
    d = np.diff(c)
    w = (c[-1] - c[0]) / (c.size - 1)
    if w <= 0 or np.any(np.abs(d - w) > rtol * abs(w) + 1e-12):
        raise ValueError(f"{where}: {what} bin centres are not uniformly spaced increasing "
                         f"(steps {d.min():g}..{d.max():g}); the release uses uniform bins")
    return frozen(np.append(c - w / 2, c[-1] + w / 2))


def to_grid(table: Table, axes: tuple[str, ...], value: str, *, dtype=float):
    """Reshape a long table (one row per cell) into a dense grid.

    Returns ``(centres, grid)``: ``centres[k]`` are the sorted distinct values of column ``axes[k]``,
    ``grid[i, j, ...]`` the ``value`` column. Every cell must occur exactly once.
    """
    idx, centres = [], []
    for name in axes:
        v = np.round(table.col(name), 9)
        u, inv = np.unique(v, return_inverse=True)
        centres.append(frozen(u))
        idx.append(inv)
    shape = tuple(len(c) for c in centres)
    flat = np.ravel_multi_index(tuple(idx), shape)
    seen = np.full(int(np.prod(shape)), -1, dtype=np.int64)
    for row, k in enumerate(flat):
        if seen[k] >= 0:
            raise ValueError(
                f"{table.where(row)}: cell {dict(zip(axes, table.data[row, :len(axes)].tolist()))} "
                f"already given on line {int(table.lines[seen[k]])}; remove the duplicate row"
            )
        seen[k] = row
    if np.any(seen < 0):
        k = int(np.flatnonzero(seen < 0)[0])
        cell = {a: float(c[i]) for a, c, i in zip(axes, centres, np.unravel_index(k, shape))}
        raise ValueError(
            f"{table.path}: cell {cell} is missing ({int(np.sum(seen < 0))} of {seen.size} cells "
            f"of the {'x'.join(map(str, shape))} grid missing); restore the published rows"
        )
    grid = np.empty(shape, dtype=dtype)
    grid.reshape(-1)[flat] = table.col(value)
    return tuple(centres), frozen(grid)


# ----------------------------------------------------------------------------------------------
# YAML (PyYAML safe loader, with YAML 1.2 numbers and duplicate keys refused)

_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a number (YAML 1.2; PyYAML's 1.1 rules need a dot) and refuses
    duplicate keys, which YAML silently resolves to the last value."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; remove one of them", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def _freeze(obj):
    if isinstance(obj, dict):
        return MappingProxyType({k: _freeze(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_freeze(v) for v in obj)
    return obj


def read_yaml(path, *, readonly: bool = True) -> Mapping:
    """Read a YAML parameter file (PyYAML ``safe_load`` rules; ``1e-3`` is a number; duplicate keys refused).

    Mappings become read-only mappings and lists tuples (``readonly=False`` gives plain ``dict``/``list``).
    Invalid YAML raises ``ValueError`` starting ``<file>:<line>:``; a top-level list raises ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(_missing(path))
    try:
        out = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe loader subclass)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ValueError(f"{path}:{line}: {e.problem or e.context}; fix the YAML syntax there") from None
    if out is None:
        out = {}
    if not isinstance(out, dict):
        raise ValueError(f"{path}: top level is a {type(out).__name__}; a mapping of parameters was expected")
    _check(path)  # after parsing, as in read_table
    return _freeze(out) if readonly else out


def yaml_number(params: Mapping, path, key: str, field: str = "value", name: str | None = None) -> float:
    """Numeric ``params[key][field]``, or of the entry ``name`` in ``params[key]["parameters"]``.

    Raises ``ValueError`` naming the file and key when it is absent or not a number.
    """
    where = f"{path}: {key}" + (f".parameters[name={name}]" if name else "") + f".{field}"
    try:
        node = params[key]
        if name is not None:
            node = next(p for p in node["parameters"] if p.get("name") == name)
        v = node[field]
    except (KeyError, TypeError, StopIteration):
        raise ValueError(f"{where} not found; the published parameter file has it") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{where} is {v!r}, not a finite number; restore the published value")
    return float(v)
