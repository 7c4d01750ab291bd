"""Tabulated spectra: a validating two-column text reader and a flux interpolated from a table.

* :func:`read_two_column` reads ``E  y`` text tables (whitespace, tab or comma separated, ``#``
  comments, optional one-line header of column names, ``.bz2`` compressed or plain) with the
  package's one table reader, :func:`cevnsjax.io.tables.read_table`. Extra columns (e.g. an
  uncertainty) are allowed and ignored. Every problem is reported as ``file:line:`` with the
  field, the value found and how to fix it.
* :class:`TableInterpolator` evaluates a table at any energy, linearly or exponentially
  ("log": ln y linear in E) between nodes and zero outside the table range.
* :class:`TabulatedFlux` is a :class:`~cevnsjax.sources.base.Source` with one continuous component
  dPhi/dE [cm^-2 s^-1 MeV^-1] read from such a table, with the table nodes as quadrature breakpoints
  (so a linearly interpolated table integrates exactly to its trapezoid sum).

Real data files are never shipped with the package: everything here takes a path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cevnsjax.io.tables import read_table
from cevnsjax.sources.base import ContinuousComponent, Source, flavour_index

__all__ = ["read_two_column", "validate_table", "TableInterpolator", "TabulatedFlux"]

INTERPOLATIONS = ("linear", "log")


def read_two_column(
    path,
    *,
    x_name: str = "E_MeV",
    y_name: str = "dPhi/dE",
    nonnegative: bool = True,
    sort: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read the first two columns of a text table; return ``(x, y)`` as float64 arrays.

    Parsing is :func:`cevnsjax.io.tables.read_table` with ``names=(x_name, y_name)`` and
    ``extra_columns=True``: one row per line, fields separated by whitespace, tabs, commas or
    semicolons; ``#`` starts a comment (whole line or trailing); blank lines are skipped; the first
    non-comment line may be a header made only of non-numeric names (e.g. ``E_MeV  N_density``). All
    data rows must have the same number (>= 2) of fields; columns beyond the second are ignored.
    Files ending in ``.bz2`` are decompressed.

    Checks (each raises ``ValueError`` starting ``<file>:<line>:`` and naming the field, the value
    and the fix): wrong number of fields, text or empty fields where numbers belong, NaN/inf (from
    the reader); negative energies, negative ``y`` (unless ``nonnegative=False``), energies not
    strictly increasing (duplicates or unsorted), fewer than two rows (:func:`validate_table`).
    A missing file is a ``ValueError`` too.

    ``sort=True`` is meant for digitised curves whose points wander back and forth: rows are sorted
    by ``x`` (stable) and rows with identical ``x`` are averaged, instead of raising.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found; give the path of an existing two-column text file")
    t = read_table(path, (x_name, y_name), extra_columns=True)
    x, y = t.data[:, 0].copy(), t.data[:, 1].copy()
    where = [f"{path}:{n}" for n in t.lines]
    if sort and x.size:
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        where = [where[i] for i in order]
        ux, inv = np.unique(x, return_inverse=True)
        if ux.size != x.size:
            y = np.bincount(inv, weights=y) / np.bincount(inv)
            first = {}
            for i, k in enumerate(inv):
                first.setdefault(int(k), where[i])
            x, where = ux, [first[k] for k in range(ux.size)]
    validate_table(x, y, x_name=x_name, y_name=y_name, where=where, source=str(path), nonnegative=nonnegative)
    return x, y


def validate_table(
    x,
    y,
    *,
    x_name: str = "E_MeV",
    y_name: str = "dPhi/dE",
    where: list[str] | None = None,
    source: str = "table",
    nonnegative: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Check a table (>= 2 rows, finite, x >= 0 strictly increasing, y >= 0); return float64 arrays.

    ``where[i]`` names row i in messages (default ``"<source>: row i"``).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"{source}: {x_name} and {y_name} must be 1-d arrays of equal length, got shapes "
            f"{x.shape} and {y.shape}; pass one value of {y_name} per energy"
        )
    if where is None:
        where = [f"{source}: row {i}" for i in range(x.size)]
    if x.size < 2:
        raise ValueError(f"{source}: has {x.size} data row(s); a table needs at least 2 rows ({x_name}, {y_name})")
    for name, arr in ((x_name, x), (y_name, y)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{where[i]}: field {name!r} = {arr[i]!r} is not finite; replace it with a finite number")
    bad = np.flatnonzero(x < 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where[i]}: field {x_name!r} = {x[i]!r} is negative; energies must be >= 0 MeV")
    if nonnegative:
        bad = np.flatnonzero(y < 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{where[i]}: field {y_name!r} = {y[i]!r} is negative; a flux/spectrum must be >= 0 "
                f"(check the sign or the column order)"
            )
    d = np.diff(x)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = int(bad[0])
        kind = "duplicate" if d[i] == 0 else "unsorted"
        raise ValueError(
            f"{where[i + 1]}: field {x_name!r} = {x[i + 1]!r} is {kind}: it is not larger than "
            f"{x[i]!r} on the previous row ({where[i]}); energies must be strictly increasing -- sort "
            f"the rows and remove duplicates"
        )
    return x, y


class TableInterpolator:
    """Callable ``y(E)`` through table nodes; zero outside ``[x[0], x[-1]]``.

    ``mode="linear"``: piecewise linear. ``mode="log"``: ln y linear in E between nodes (exponential
    interpolation, as used for the Daya Bay Huber-Mueller tables); on an interval touching y = 0 it
    falls back to linear.
    """

    def __init__(self, x, y, mode: str = "linear"):
        if mode not in INTERPOLATIONS:
            raise ValueError(f"interpolation={mode!r} is not valid; use one of {INTERPOLATIONS}")
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.mode = mode
        if mode == "log" and np.any(self.y < 0):
            raise ValueError("interpolation='log' needs y >= 0; use interpolation='linear'")

    def __call__(self, e) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        x, y = self.x, self.y
        inside = (e >= x[0]) & (e <= x[-1])
        i = np.clip(np.searchsorted(x, e, side="right") - 1, 0, x.size - 2)
        x0, x1, y0, y1 = x[i], x[i + 1], y[i], y[i + 1]
        t = (e - x0) / (x1 - x0)
        out = y0 + t * (y1 - y0)
        if self.mode == "log":
            pos = (y0 > 0) & (y1 > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                logv = np.exp(np.log(np.where(pos, y0, 1.0)) * (1 - t) + np.log(np.where(pos, y1, 1.0)) * t)
            out = np.where(pos, logv, out)
        return np.where(inside, out, 0.0)

    def integral(self) -> float:
        """Exact integral over the table range of the interpolated curve."""
        x, y = self.x, self.y
        dx = np.diff(x)
        lin = 0.5 * dx * (y[:-1] + y[1:])
        if self.mode == "linear":
            return float(lin.sum())
        y0, y1 = y[:-1], y[1:]
        pos = (y0 > 0) & (y1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(np.where(pos, y1, 1.0) / np.where(pos, y0, 1.0))
            expo = np.where(np.abs(r) > 1e-12, dx * (y1 - y0) / np.where(r == 0, 1.0, r), dx * y0)
        return float(np.where(pos, expo, lin).sum())


class TabulatedFlux(Source):
    """A flux at the detector read from a table of dPhi/dE [cm^-2 s^-1 MeV^-1] vs E [MeV].

    One :class:`ContinuousComponent` whose density interpolates the table (``"linear"`` or
    ``"log"``), is zero outside the table range, and has the table nodes as breakpoints. ``scale``
    multiplies the table (e.g. to convert units or normalise).
    """

    def __init__(
        self,
        energies,
        dphi_de,
        *,
        flavour="e",
        antineutrino: bool = False,
        name: str = "tabulated",
        scale: float = 1.0,
        interpolation: str = "linear",
        max_step: float = 0.5,
    ):
        if not (isinstance(scale, (int, float, np.floating)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale={scale!r} must be a finite number >= 0; it multiplies the table")
        x, y = validate_table(energies, dphi_de, y_name="dPhi/dE", source=f"TabulatedFlux {name!r}")
        self.energies = x
        self.values = y * float(scale)
        self.name = name
        self.flavour = flavour_index(flavour)
        self.antineutrino = bool(antineutrino)
        self.interpolator = TableInterpolator(self.energies, self.values, interpolation)
        self.max_step = float(max_step)

    @classmethod
    def from_file(
        cls,
        path,
        flavour="e",
        antineutrino: bool = False,
        scale: float = 1.0,
        interpolation: str = "linear",
        name: str | None = None,
        **kwargs,
    ) -> TabulatedFlux:
        """Build from a two-column file (see :func:`read_two_column`): E [MeV], dPhi/dE [cm^-2 s^-1 MeV^-1]."""
        x, y = read_two_column(path, x_name="E_MeV", y_name="dPhi/dE")
        return cls(
            x,
            y,
            flavour=flavour,
            antineutrino=antineutrino,
            scale=scale,
            interpolation=interpolation,
            name=name if name is not None else Path(path).name,
            **kwargs,
        )

    def components(self) -> tuple[ContinuousComponent, ...]:
        return (
            ContinuousComponent(
                name=self.name,
                flavour=self.flavour,
                antineutrino=self.antineutrino,
                density=self.interpolator,
                breakpoints=tuple(float(v) for v in self.energies),
                max_step=self.max_step,
            ),
        )
