"""Quenching: nuclear recoil energy E_R [keVnr] -> ionisation / electron-equivalent energy E_ee [keVee].

Every model is a small frozen dataclass registered as a JAX pytree: traced fields are fit parameters
(k, q, table values, polynomial coefficients), static fields are Z, A and caps. All share

* ``Q(E_R_keV)``        quenching factor (dimensionless), E_ee = Q E_R;
* ``E_ee(E_R_keV)``     ionisation energy [keVee];
* ``dEee_dER(E_R_keV)`` dE_ee/dE_R = Q + E_R dQ/dE_R (elementwise, by forward-mode autodiff);
* ``physical(E_R_keV)`` boolean mask of the region where the model is meant to be used.

Energies here are in keV (the unit of every quenching paper and data file); the rest of cevnsjax
works in MeV, so multiply by ``constants.KEV`` at the boundary.

Spectra change variables with the exact Jacobian (REFERENCE §0):
dR/dE_ee = (dR/dE_R) / (Q + E_R dQ/dE_R)  -- see :func:`counts_in_Eee_bins`.

Models: :class:`Lindhard` (Lindhard et al. 1963), :class:`ModifiedLindhard` (Sorensen,
PRD 91, 083509, arXiv:1412.3028), :class:`TabulatedQuenching` (Dresden-II Fef/YBe tables,
Collar et al. PRD 103, 122003; COHERENT CsI measurements, arXiv:1708.01294),
:class:`ConstantQuenching` (COHERENT 2017: 0.0878), :class:`PolynomialLightYield` (COHERENT CsI 2021,
arXiv:2110.07730 data release).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "QuenchingModel",
    "Lindhard",
    "ModifiedLindhard",
    "TabulatedQuenching",
    "ConstantQuenching",
    "PolynomialLightYield",
    "lindhard_k",
    "lindhard_eps_per_keV",
    "monotonic_threshold",
    "E_R_from_Eee",
    "spectrum_in_Eee",
    "counts_in_Eee_bins",
]

# Below this recoil energy [keV] a model returns its E_R -> 0 limit (guards 1/eps and eps^0.15).
_E_MIN_KEV = 1e-30


def _meta(**kw):
    """A dataclass field marked static for ``jax.tree_util.register_dataclass``."""
    return field(metadata=dict(static=True), **kw)


def lindhard_k(Z: float, A: float) -> float:
    """Lindhard k = 0.133 Z^(2/3) A^(-1/2) (A in u; Ge natural: 0.1573)."""
    return 0.133 * Z ** (2.0 / 3.0) * A ** (-0.5)


def lindhard_eps_per_keV(Z: float) -> float:
    """Reduced energy per keV, eps/E_R = 11.5 Z^(-7/3) keV^-1 (Ge: 3.5374e-3)."""
    return 11.5 * Z ** (-7.0 / 3.0)


class QuenchingModel:
    """Base class: subclasses implement ``Q``; ``E_ee``, ``dEee_dER`` and ``physical`` follow."""

    def Q(self, E_R_keV):  # pragma: no cover - abstract
        raise NotImplementedError

    def E_ee(self, E_R_keV):
        """Electron-equivalent (ionisation) energy E_ee = Q(E_R) E_R [keVee]."""
        E = jnp.asarray(E_R_keV)
        return E * self.Q(E)

    def dEee_dER(self, E_R_keV):
        """dE_ee/dE_R = Q + E_R dQ/dE_R, elementwise (a jvp with unit tangent)."""
        E = jnp.asarray(E_R_keV)
        if not jnp.issubdtype(E.dtype, jnp.floating):
            E = E.astype(jnp.result_type(float))
        return jax.jvp(self.E_ee, (E,), (jnp.ones_like(E),))[1]

    def physical(self, E_R_keV):
        """Mask of E_R where the model is meant to be used (default: E_R > 0)."""
        return jnp.asarray(E_R_keV) > 0


def _lindhard_part(k, Z, E):
    """k g/(1+k g) with g = 3 eps^0.15 + 0.7 eps^0.6 + eps; returns (value, eps_safe, E>0 mask).

    Double-``where``: eps^0.15 has an infinite derivative at 0, so E <= _E_MIN_KEV is replaced by 1
    before the powers and the value set to its limit (0) afterwards. Negative k is treated as 0.
    """
    E = jnp.asarray(E)
    pos = E > _E_MIN_KEV
    eps = lindhard_eps_per_keV(Z) * jnp.where(pos, E, 1.0)
    g = 3.0 * eps**0.15 + 0.7 * eps**0.6 + eps
    kg = jnp.maximum(k, 0.0) * g
    return jnp.where(pos, kg / (1.0 + kg), 0.0), eps, pos


def _check_k(model: str, k) -> None:
    """Refuse a Python-number k <= 0 or non-finite (arrays and tracers pass: jit, grad and scans rebuild
    the model with them, and a scan may cross any value)."""
    if isinstance(k, (int, float)) and not isinstance(k, bool) and not (math.isfinite(k) and k > 0):
        raise ValueError(f"{model}: k={k!r} must be finite and > 0 (Ge ~0.16; None = 0.133 Z^(2/3) A^(-1/2))")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Lindhard(QuenchingModel):
    """Standard Lindhard quenching: Q = k g(eps)/(1 + k g(eps)) (Lindhard et al. 1963).

    eps = 11.5 Z^(-7/3) E_R[keV], g = 3 eps^0.15 + 0.7 eps^0.6 + eps. ``k=None`` uses
    0.133 Z^(2/3) A^(-1/2) (Ge: 0.1573), held static; pass a number to fit k (traced).
    Ge, k = 0.157: Q(1 keV) = 0.17099, Q(5 keV) = 0.21240. Q -> 0 as E_R -> 0; Q(E_R <= 0) = 0.
    """

    Z: float = _meta()
    A: float = _meta()
    k: float | None = None

    def __post_init__(self):
        if not (isinstance(self.Z, (int, float)) and self.Z > 0 and isinstance(self.A, (int, float)) and self.A > 0):
            raise ValueError(f"Lindhard: Z={self.Z!r} and A={self.A!r} must be positive numbers (A in u)")
        _check_k("Lindhard", self.k)

    @property
    def k_value(self):
        return lindhard_k(self.Z, self.A) if self.k is None else self.k

    def Q(self, E_R_keV):
        return _lindhard_part(self.k_value, self.Z, E_R_keV)[0]


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class ModifiedLindhard(QuenchingModel):
    """Modified Lindhard (Sorensen, PRD 91, 083509, arXiv:1412.3028): Q = k g/(1 + k g) - q/eps.

    Ge, k = 0.153, q = -15e-5: Q(0.1 keV) = 0.54709, Q(1 keV) = 0.20977.

    * E_R * (-q/eps) = -q Z^(7/3)/11.5 keV is a constant, so for q < 0 E_ee gets a constant offset
      (Ge: -282.7 q keV = 42.4 eV for q = -15e-5) and Q diverges as E_R -> 0: Q > 1 below ~0.047 keV.
      **Choice:** Q is capped at ``q_max`` (static, default 1) by a smooth minimum of width
      ``cap_width`` (static, default 1e-3 in Q; 0 = hard ``min``):
      Q = q_max - w softplus((q_max - Q_raw)/w). Where Q_raw < q_max - 30 w the cap changes Q by
      < 1e-13 w. With the cap E_ee = min(q_max E_R, E_R L + c) stays continuous, rises from 0 and is
      monotonic, but the capped region has no physical meaning. ``q_max=None`` disables the cap.
    * q > 0 gives a cutoff: Q_raw < 0 below E_R ~ q Z^(7/3)/(11.5 k g); Q is clipped at 0 there
      (gradient 0, no NaN).
    * Physical region (``physical``): 0 < Q_raw <= 1 and the cap inactive (Q_raw <= q_max - 30 w).
      Put the analysis threshold there: :func:`monotonic_threshold` returns it on a grid.
    * E_R <= 0 returns the E_R -> 0 limit: q_max (capped, q < 0) or 0.
    """

    Z: float = _meta()
    A: float = _meta()
    k: float = 0.157
    q: float = 0.0
    q_max: float | None = _meta(default=1.0)
    cap_width: float = _meta(default=1e-3)

    def __post_init__(self):
        if not (isinstance(self.Z, (int, float)) and self.Z > 0 and isinstance(self.A, (int, float)) and self.A > 0):
            raise ValueError(f"ModifiedLindhard: Z={self.Z!r} and A={self.A!r} must be positive numbers (A in u)")
        if self.q_max is not None and not (math.isfinite(self.q_max) and self.q_max > 0):
            raise ValueError(f"ModifiedLindhard: q_max={self.q_max!r} must be finite and > 0, or None (no cap)")
        if not (math.isfinite(self.cap_width) and self.cap_width >= 0):
            raise ValueError(f"ModifiedLindhard: cap_width={self.cap_width!r} must be finite and >= 0 (0 = hard cap)")
        _check_k("ModifiedLindhard", self.k)

    def Q_raw(self, E_R_keV):
        """Uncapped, unclipped k g/(1+k g) - q/eps (E_R > 0 only; the E_R->0 limit elsewhere)."""
        L, eps, pos = _lindhard_part(self.k, self.Z, E_R_keV)
        raw = L - self.q / eps
        limit = jnp.where(self.q < 0, jnp.inf if self.q_max is None else self.q_max, 0.0)
        return jnp.where(pos, raw, limit)

    def _cap(self, Qr):
        if self.q_max is None:
            return Qr
        if self.cap_width == 0:
            return jnp.minimum(Qr, self.q_max)
        w = self.cap_width
        return self.q_max - w * jax.nn.softplus((self.q_max - Qr) / w)

    def Q(self, E_R_keV):
        L, eps, pos = _lindhard_part(self.k, self.Z, E_R_keV)
        Qc = jnp.maximum(self._cap(L - self.q / eps), 0.0)
        limit = jnp.where(self.q < 0, 0.0 if self.q_max is None else self.q_max, 0.0)
        return jnp.where(pos, Qc, limit)

    def physical(self, E_R_keV):
        Qr = self.Q_raw(E_R_keV)
        upper = 1.0 if self.q_max is None else min(1.0, self.q_max - 30.0 * self.cap_width)
        return (jnp.asarray(E_R_keV) > 0) & (Qr > 0) & (Qr <= upper)


def _check_table(name, E, Q, where):
    E = np.asarray(E, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    if E.ndim != 1 or E.shape != Q.shape or E.size < 2:
        raise ValueError(f"{name}{where}: need two 1-D arrays of equal length >= 2, got shapes {E.shape}, {Q.shape}")
    if not (np.all(np.isfinite(E)) and np.all(np.isfinite(Q))):
        raise ValueError(f"{name}{where}: table holds non-finite values")
    if np.any(np.diff(E) <= 0):
        i = int(np.argmax(np.diff(E) <= 0))
        raise ValueError(f"{name}{where}: E_R must be strictly increasing; E_R[{i}]={E[i]} >= E_R[{i + 1}]={E[i + 1]} keV")
    if np.any(Q < 0):
        raise ValueError(f"{name}{where}: quenching factors must be >= 0")
    return E, Q


@jax.tree_util.register_dataclass
@dataclass(frozen=True, eq=False)
class TabulatedQuenching(QuenchingModel):
    """Q(E_R) linearly interpolated in a table (E_R [keVnr], Q), times a traced ``scale`` (nuisance).

    Outside the table Q is held at the end values (``jnp.interp``). Build with :meth:`from_arrays`
    (validates). Linear interpolation is differentiable in E_R everywhere except at the nodes, where
    JAX takes one side; dE_ee/dE_R is piecewise linear. Physical region: inside the table.
    """

    E_R_keV: np.ndarray
    Q_values: np.ndarray
    scale: float = 1.0

    @classmethod
    def from_arrays(cls, E_R_keV, Q_values, scale: float = 1.0, *, source: str = "") -> TabulatedQuenching:
        E, Q = _check_table("TabulatedQuenching", E_R_keV, Q_values, f" ({source})" if source else "")
        return cls(E, Q, scale)

    def Q(self, E_R_keV):
        E = jnp.asarray(E_R_keV)
        return self.scale * jnp.interp(E, jnp.asarray(self.E_R_keV), jnp.asarray(self.Q_values))

    def physical(self, E_R_keV):
        E = jnp.asarray(E_R_keV)
        return (E > 0) & (E >= self.E_R_keV[0]) & (E <= self.E_R_keV[-1])


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class ConstantQuenching(QuenchingModel):
    """Energy-independent Q (COHERENT CsI 2017: 0.0878 +- 0.0166, coherent_parameters.yaml)."""

    value: float = 0.0878

    def Q(self, E_R_keV):
        E = jnp.asarray(E_R_keV)
        return jnp.ones(jnp.shape(E), dtype=jnp.result_type(E, float)) * self.value


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PolynomialLightYield(QuenchingModel):
    """COHERENT CsI[Na] 2021 scintillation response (arXiv:2110.07730 release, scintRespCoefficients.txt).

    E_ee[MeVee] = a x + b x^2 + c x^3 + d x^4 with x = E_R in MeVnr, i.e. Q = a + b x + c x^2 + d x^3.
    Nominal (a, b, c, d) = (0.0554628, 4.30681, -111.707, 840.384): Q(10 keVnr) = 0.088201.
    The output is keVee; PE = light yield (13.35 PE/keVee) x E_ee, see ``cevnsjax.detector.response``.
    Fitted over the CEvNS range (E_R <~ 60 keVnr); physical region: 0 < E_R <= ``E_R_max_keV``.
    """

    a: float = 0.0554628
    b: float = 4.30681
    c: float = -111.707
    d: float = 840.384
    E_R_max_keV: float = _meta(default=100.0)

    def Q(self, E_R_keV):
        x = jnp.asarray(E_R_keV) * 1e-3
        return self.a + x * (self.b + x * (self.c + x * self.d))

    def physical(self, E_R_keV):
        E = jnp.asarray(E_R_keV)
        return (E > 0) & (E <= self.E_R_max_keV)


# ---------------------------------------------------------------------------------------------------
# Monotonicity, inversion and the Jacobian


def monotonic_threshold(model: QuenchingModel, E_R_grid):
    """Lowest grid E_R [keV] above which E_ee is strictly increasing and ``model.physical`` holds.

    Checks every neighbouring pair of ``E_R_grid`` (increasing) at and above the returned point;
    returns +inf if even the last pair fails. Pure JAX (jit-able). For ModifiedLindhard with q < 0
    this is the first grid point above the Q = 1 (or cap) crossing; with q > 0 the end of the
    Q = 0 plateau. Use it as the lowest allowed analysis threshold.
    """
    E = jnp.asarray(E_R_grid)
    Eee = model.E_ee(E)
    phys = model.physical(E)
    ok = (Eee[1:] > Eee[:-1]) & phys[1:] & phys[:-1]
    idx = jnp.arange(ok.shape[0])
    last_bad = jnp.max(jnp.where(ok, -1, idx))
    i = last_bad + 1
    return jnp.where(i >= E.shape[0] - 1, jnp.inf, E[jnp.minimum(i, E.shape[0] - 1)])


def E_R_from_Eee(model: QuenchingModel, E_ee_keV, E_R_lo_keV: float, E_R_hi_keV: float, n_bisect: int = 64):
    """Invert E_ee(E_R) on [E_R_lo, E_R_hi] [keV], where E_ee must be increasing (see monotonic_threshold).

    Bisection (``n_bisect`` steps, no gradient) then two Newton polishes and one final Newton step
    that carries the gradient: at the root that step's derivative is the implicit-function result
    dE_R/dtheta = -(dE_ee/dtheta)/(dE_ee/dE_R). Targets outside [E_ee(lo), E_ee(hi)] clamp to the ends.
    """
    y = jnp.asarray(E_ee_keV)
    dtype = jnp.result_type(y, float)
    y = y.astype(dtype)
    lo0 = jnp.full_like(y, E_R_lo_keV)
    hi0 = jnp.full_like(y, E_R_hi_keV)
    m_sg = jax.lax.stop_gradient(model)
    y_sg = jax.lax.stop_gradient(y)

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = m_sg.E_ee(mid) < y_sg
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = lax.fori_loop(0, n_bisect, body, (lo0, hi0))
    x = 0.5 * (lo + hi)

    def newton(mod, x, y):
        d = mod.dEee_dER(x)
        ok = d > 0
        step = jnp.where(ok, (mod.E_ee(x) - y) / jnp.where(ok, d, 1.0), 0.0)
        return jnp.clip(x - step, E_R_lo_keV, E_R_hi_keV)

    for _ in range(2):
        x = newton(m_sg, x, y_sg)
    return newton(model, jax.lax.stop_gradient(x), y)


def spectrum_in_Eee(model: QuenchingModel, E_R_keV, dR_dER):
    """Change variables at nodes: returns (E_ee [keVee], dR/dE_ee = (dR/dE_R)/(Q + E_R dQ/dE_R)).

    Exact Jacobian of REFERENCE §0 (the seed talk's form drops a 1/Q). Where dE_ee/dE_R <= 0
    (Q clipped at 0, unphysical) dR/dE_ee is set to 0.
    """
    J = model.dEee_dER(E_R_keV)
    ok = J > 0
    return model.E_ee(E_R_keV), jnp.where(ok, dR_dER / jnp.where(ok, J, 1.0), 0.0)


def counts_in_Eee_bins(
    model: QuenchingModel,
    dR_dER: Callable,
    Eee_edges_keV,
    E_R_range_keV: tuple[float, float],
    n_nodes: int = 16,
):
    """Counts per E_ee bin: sum_i int_{bin i} dE_ee (dR/dE_R)(E_R(E_ee)) / (Q + E_R dQ/dE_R).

    ``dR_dER``: callable E_R [keV] -> rate per keVnr (pure JAX). ``E_R_range_keV``: bracket for the
    inversion, inside the monotonic region. Gauss-Legendre with ``n_nodes`` points per E_ee bin.
    With Eee_edges = model.E_ee(E_R_edges) this equals the E_R-bin integrals (test: 1e-8).
    """
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    edges = jnp.asarray(Eee_edges_keV)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    Eee = mid[:, None] + half[:, None] * x
    ER = E_R_from_Eee(model, Eee, *E_R_range_keV)
    _, dRdEee = spectrum_in_Eee(model, ER, dR_dER(ER))
    return jnp.sum(dRdEee * w, axis=1) * half
