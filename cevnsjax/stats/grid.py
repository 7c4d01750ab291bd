"""Scan grids: an :class:`Axis` ("NAME=lin|log:START:STOP:N") and a regular :class:`Grid` of 1-3 axes
(points in flat C order), shared by :mod:`cevnsjax.stats.scan` and the scan result in
:mod:`cevnsjax.results`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cevnsjax.names import check_known, did_you_mean

__all__ = ["Axis", "Grid", "parse_axis"]


def _check_name(name: str, valid_names, what="parameter"):
    if valid_names is not None:
        check_known([name], valid_names, what)


@dataclass(frozen=True)
class Axis:
    """One grid axis: ``n`` values of ``name`` from ``start`` to ``stop``, ``spacing`` 'lin' or 'log'."""

    name: str
    spacing: str
    start: float
    stop: float
    n: int

    def __post_init__(self):
        where = f"axis {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"axis name {self.name!r} must be a non-empty string, e.g. 'g_zprime'")
        if self.spacing not in ("lin", "log"):
            raise ValueError(f"{where}: spacing {self.spacing!r} is not valid{did_you_mean(str(self.spacing), ('lin', 'log'))}; "
                             "use 'lin' or 'log'")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n <= 0:
            raise ValueError(f"{where}: N = {self.n!r} must be a positive integer (number of grid points), e.g. 50")
        for k in ("start", "stop"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise ValueError(f"{where}: {k.upper()} = {v!r} must be a finite number")
            object.__setattr__(self, k, float(v))
        object.__setattr__(self, "n", int(self.n))
        if self.spacing == "log":
            for k in ("start", "stop"):
                if getattr(self, k) <= 0:
                    raise ValueError(f"{where}: log spacing needs START and STOP > 0, got {k.upper()} = "
                                     f"{getattr(self, k)!r}; use lin spacing or a positive bound (e.g. 1e-6)")
        if self.n > 1 and not self.stop > self.start:
            raise ValueError(f"{where}: STOP = {self.stop!r} must exceed START = {self.start!r} when N = {self.n} > 1 "
                             "(swap them; grids run upwards)")
        if self.n == 1 and self.stop != self.start:
            raise ValueError(f"{where}: N = 1 needs START == STOP (one point), got {self.start!r} and {self.stop!r}")

    @property
    def values(self) -> np.ndarray:
        if self.n == 1:
            return np.array([self.start])
        if self.spacing == "lin":
            return np.linspace(self.start, self.stop, self.n)
        return np.geomspace(self.start, self.stop, self.n)

    def to_text(self) -> str:
        return f"{self.name}={self.spacing}:{self.start!r}:{self.stop!r}:{self.n}"

    def to_json(self) -> dict:
        return dict(name=self.name, spacing=self.spacing, start=self.start, stop=self.stop, n=self.n)


def parse_axis(text: str, valid_names: Sequence[str] | None = None) -> Axis:
    """``"NAME=lin|log:START:STOP:N"`` -> :class:`Axis` (e.g. ``"g_zprime=log:1e-6:1e-3:50"``).

    ``valid_names`` (from the caller, e.g. :func:`cevnsjax.experiment.valid_names`) rejects unknown
    parameters with the closest valid one. Every error names the field, the value and the fix.
    """
    form = "NAME=lin|log:START:STOP:N, e.g. g_zprime=log:1e-6:1e-3:50"
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"grid axis {text!r} must look like {form}")
    name, _, rest = text.partition("=")
    name = name.strip()
    if not name:
        raise ValueError(f"grid axis {text!r}: NAME is empty; write {form}")
    _check_name(name, valid_names)
    parts = [p.strip() for p in rest.split(":")]
    if len(parts) != 4:
        raise ValueError(f"grid axis {text!r}: got {len(parts)} field(s) after '=', need 4 "
                         f"(spacing, START, STOP, N); write {form}")
    spacing, s0, s1, sn = parts
    if spacing not in ("lin", "log"):
        raise ValueError(f"grid axis {text!r}: spacing {spacing!r} is not valid{did_you_mean(spacing, ('lin', 'log'))}; "
                         "use 'lin' or 'log'")
    vals = []
    for label, s in (("START", s0), ("STOP", s1)):
        try:
            vals.append(float(s))
        except ValueError:
            raise ValueError(f"grid axis {text!r}: {label} = {s!r} is not a number; write e.g. 1e-6") from None
    try:
        n = int(sn)
    except ValueError:
        raise ValueError(f"grid axis {text!r}: N = {sn!r} must be a positive integer (number of points), e.g. 50") from None
    return Axis(name, spacing, vals[0], vals[1], n)


@dataclass(frozen=True)
class Grid:
    """A regular grid of 1-3 :class:`Axis` (points in flat C order: the last axis runs fastest)."""

    axes: tuple

    def __init__(self, axes):
        axes = tuple(parse_axis(a) if isinstance(a, str) else a for a in axes)
        if not 1 <= len(axes) <= 3:
            raise ValueError(f"a scan grid has 1 to 3 axes, got {len(axes)}; fix or profile the other parameters")
        names = [a.name for a in axes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"grid axis names must be distinct; {dup} appear more than once")
        object.__setattr__(self, "axes", axes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.n for a in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def values(self) -> dict[str, np.ndarray]:
        return {a.name: a.values for a in self.axes}

    def points(self, flat_index) -> np.ndarray:
        """Parameter values (len(flat_index), n_axes) of the points with these flat indices."""
        idx = np.unravel_index(np.asarray(flat_index), self.shape)
        return np.stack([a.values[i] for a, i in zip(self.axes, idx)], axis=-1)

    def to_json(self) -> list:
        return [a.to_json() for a in self.axes]

    @classmethod
    def from_json(cls, data) -> Grid:
        return cls([Axis(**d) for d in data])
