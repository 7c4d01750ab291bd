"""A piecewise-constant (binned) flux: one component per energy bin, entering the rate linearly.

This is the representation of flux unfolding and flux-bin inference: with kernels prepared once,
the rate is sum_i a_i K_i, so the amplitudes a_i are passed as ``flux_scale`` to the rate functions
(relative to the nominal ``amplitudes`` given here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cevnsjax.sources.base import ContinuousComponent, Source, flavour_index

__all__ = ["BinnedFlux"]


@dataclass(frozen=True)
class BinnedFlux(Source):
    """dPhi/dE = amplitudes[i] [cm^-2 s^-1 MeV^-1] on [edges[i], edges[i+1]) MeV, one flavour."""

    edges_MeV: tuple
    amplitudes: tuple
    flavour: int = 0
    antineutrino: bool = True

    def __post_init__(self):
        e = np.asarray(self.edges_MeV, float)
        a = np.asarray(self.amplitudes, float)
        if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0) or e[0] < 0:
            raise ValueError(
                f"edges_MeV={self.edges_MeV!r} must be >= 2 finite, non-negative, strictly increasing energies in MeV"
            )
        if a.shape != (e.size - 1,):
            raise ValueError(f"amplitudes has {a.size} values for {e.size - 1} bins; give one dPhi/dE per bin")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"amplitudes must be finite and >= 0 (cm^-2 s^-1 MeV^-1), got {a[:5]}...")
        object.__setattr__(self, "edges_MeV", tuple(map(float, e)))
        object.__setattr__(self, "amplitudes", tuple(map(float, a)))
        object.__setattr__(self, "flavour", flavour_index(self.flavour))

    @classmethod
    def from_source(cls, source: Source, edges_MeV, n_gl: int = 48) -> BinnedFlux:
        """Average a source's continuous components of one flavour over the bins (flux conserved per bin)."""
        comps = source.components()
        flav = {(c.flavour, c.antineutrino) for c in comps}
        if len(flav) != 1:
            raise ValueError(f"from_source needs a single-flavour source, got flavours {sorted(flav)}")
        (f, anti), = flav
        e = np.asarray(edges_MeV, float)
        x, w = np.polynomial.legendre.leggauss(n_gl)
        amps = []
        for lo, hi in zip(e[:-1], e[1:]):
            # split at every component breakpoint inside the bin (tables, joins, endpoints)
            cuts = np.unique(np.concatenate([[lo, hi], *[np.asarray(getattr(c, "breakpoints", ()), float) for c in comps]]))
            cuts = cuts[(cuts >= lo) & (cuts <= hi)]
            tot = 0.0
            for a, b in zip(cuts[:-1], cuts[1:]):
                E = 0.5 * (b - a) * x + 0.5 * (b + a)
                tot += 0.5 * (b - a) * sum(float(np.dot(w, c.density(E))) for c in comps if hasattr(c, "density"))
            amps.append(tot / (hi - lo))
        return cls(tuple(e), tuple(amps), f, anti)

    @property
    def n_bins(self) -> int:
        return len(self.amplitudes)

    def components(self):
        e = self.edges_MeV
        out = []
        for i, amp in enumerate(self.amplitudes):
            lo, hi = e[i], e[i + 1]
            dens = (lambda lo, hi, amp: lambda E: np.where((E >= lo) & (E < hi), amp, 0.0))(lo, hi, amp)
            out.append(ContinuousComponent(f"bin{i}", self.flavour, self.antineutrino, dens, (lo, hi),
                                           max_step=(hi - lo) / 4.0))
        return tuple(out)
