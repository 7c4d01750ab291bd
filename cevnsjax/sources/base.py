"""Neutrino sources as lists of flux components.

A source is host-side data used once, when kernels are prepared (``cevnsjax.rates.prepare``); it is
never traced. Every component is one flavour with either a continuous density or a line:

* :class:`ContinuousComponent` -- ``density(E)`` is dPhi/dE at the detector in cm^-2 s^-1 MeV^-1 for
  E in MeV (numpy float64, vectorised, zero outside the support). ``breakpoints`` lists the energies
  where the density ends, has a kink or a jump (table nodes, joins between models, endpoints); the
  kernel quadrature is split there so that it converges to machine precision.
* :class:`LineComponent` -- a monoenergetic line, Phi(E) = flux * delta(E - energy), integrated
  exactly (no narrow peak).

Each component's flux enters the rate linearly, so every component is also a nuisance/fit handle
(``flux_scale`` in :func:`cevnsjax.rates.recoil_spectrum`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

FLAVOURS = ("e", "mu", "tau")


def flavour_index(flavour: str | int) -> int:
    """Map 'e'/'mu'/'tau' (or 0/1/2) to 0/1/2, with a clear error otherwise."""
    if isinstance(flavour, (int, np.integer)) and 0 <= int(flavour) < 3:
        return int(flavour)
    if isinstance(flavour, str) and flavour in FLAVOURS:
        return FLAVOURS.index(flavour)
    raise ValueError(f"flavour={flavour!r} is not valid; use one of {FLAVOURS} (or 0, 1, 2)")


@dataclass(frozen=True)
class ContinuousComponent:
    """A continuous flux component: dPhi/dE [cm^-2 s^-1 MeV^-1] of one flavour."""

    name: str
    flavour: int
    antineutrino: bool
    density: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    breakpoints: tuple[float, ...]
    max_step: float = 0.5  # MeV: widest sub-interval of the kernel quadrature

    def __post_init__(self):
        bp = np.asarray(self.breakpoints, dtype=float)
        if bp.ndim != 1 or bp.size < 2 or not np.all(np.isfinite(bp)) or np.any(np.diff(bp) <= 0):
            raise ValueError(
                f"component {self.name!r}: breakpoints must be >= 2 finite, strictly increasing "
                f"energies in MeV, got {self.breakpoints!r}"
            )
        if bp[0] < 0:
            raise ValueError(f"component {self.name!r}: breakpoints start at {bp[0]} MeV < 0; energies must be >= 0")

    @property
    def energy_max(self) -> float:
        return float(self.breakpoints[-1])

    def total_flux(self) -> float:
        """Integral of the density over its support [cm^-2 s^-1] (Gauss-Legendre, split at breakpoints)."""
        x, w = np.polynomial.legendre.leggauss(48)
        total = 0.0
        for lo, hi in subintervals(self.breakpoints, self.max_step):
            e = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
            total += 0.5 * (hi - lo) * float(np.dot(w, self.density(e)))
        return total

    def mean_energy(self) -> float:
        x, w = np.polynomial.legendre.leggauss(48)
        num = 0.0
        for lo, hi in subintervals(self.breakpoints, self.max_step):
            e = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
            num += 0.5 * (hi - lo) * float(np.dot(w, e * self.density(e)))
        return num / self.total_flux()


@dataclass(frozen=True)
class LineComponent:
    """A monoenergetic line: Phi(E) = flux * delta(E - energy); energy in MeV, flux in cm^-2 s^-1."""

    name: str
    flavour: int
    antineutrino: bool
    energy: float
    flux: float

    def __post_init__(self):
        if not (math.isfinite(self.energy) and self.energy > 0):
            raise ValueError(f"line {self.name!r}: energy={self.energy!r} MeV must be finite and > 0")
        if not (math.isfinite(self.flux) and self.flux >= 0):
            raise ValueError(f"line {self.name!r}: flux={self.flux!r} cm^-2 s^-1 must be finite and >= 0")

    @property
    def energy_max(self) -> float:
        return float(self.energy)

    def total_flux(self) -> float:
        return float(self.flux)

    def mean_energy(self) -> float:
        return float(self.energy)


Component = ContinuousComponent | LineComponent


class Source:
    """Base class of neutrino sources: a tuple of flux components at the detector."""

    def components(self) -> tuple[Component, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def total_flux(self) -> float:
        """Total flux at the detector, all components [cm^-2 s^-1]."""
        return float(sum(c.total_flux() for c in self.components()))

    @property
    def component_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components())


@dataclass(frozen=True)
class CompositeSource(Source):
    """Several sources seen by one detector (e.g. two reactor cores)."""

    sources: tuple[Source, ...]

    def components(self) -> tuple[Component, ...]:
        out: list[Component] = []
        for s in self.sources:
            out.extend(s.components())
        return tuple(out)


@dataclass(frozen=True)
class ScaledSource(Source):
    """A source with every component multiplied by ``factor`` (e.g. to impose a published total flux)."""

    inner: Source
    factor: float

    def components(self) -> tuple[Component, ...]:
        f = float(self.factor)
        out: list[Component] = []
        for c in self.inner.components():
            if isinstance(c, LineComponent):
                out.append(LineComponent(c.name, c.flavour, c.antineutrino, c.energy, c.flux * f))
            else:
                out.append(ContinuousComponent(c.name, c.flavour, c.antineutrino,
                                               (lambda d: lambda E: f * d(E))(c.density), c.breakpoints, c.max_step))
        return tuple(out)

    def total_flux(self) -> float:
        """The inner source's total flux (its own definition, e.g. yield-based for a reactor) x factor."""
        return float(self.inner.total_flux()) * float(self.factor)


def subintervals(breakpoints: Sequence[float], max_step: float) -> list[tuple[float, float]]:
    """Split [b_0, b_-1] at the breakpoints and further into pieces no wider than ``max_step``."""
    out = []
    for lo, hi in zip(breakpoints[:-1], breakpoints[1:]):
        n = max(1, int(math.ceil((hi - lo) / max_step)))
        edges = np.linspace(lo, hi, n + 1)
        out.extend(zip(edges[:-1].tolist(), edges[1:].tolist()))
    return out


def check_positive(name: str, value: float, unit: str, fix: str = "") -> float:
    """Validate a strictly positive finite scalar, raising an error that names field, value and fix."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; give a positive value in {unit}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}={value!r} {unit} must be finite and > 0{'; ' + fix if fix else ''}")
    return v


def geometric_factor_cm2(distance_m: float) -> float:
    """1 / (4 pi L^2) in cm^-2 for a distance in metres."""
    L = check_positive("distance_m", distance_m, "m", "give the source-detector distance in metres") * 100.0
    return 1.0 / (4.0 * math.pi * L * L)
