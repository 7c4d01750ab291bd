"""Maximum likelihood, profile likelihood, nested-hypothesis tests and Fisher matrices.

Every objective is ``-2 ln L`` (chi^2-like): ``objective(params, *args) -> scalar`` where ``params``
is a flat dict of named scalars or arrays, e.g. ``{"sin2_theta_w": 0.24, "bkg": 10.0}``. The
optimiser is the one core of :mod:`cevnsjax.stats.optimize` (projected Levenberg-Marquardt Newton
with the exact Hessian); box bounds ``{"bkg": (0, None)}``, the fixed set and the starting points are
data, so the solver compiles once per (objective, parameter layout, number of starts). Errors come
from the inverse of half the Hessian of -2 ln L at the best fit. Profiles fix the scanned parameters
at each point and re-minimise the others, warm-started from the previous point.

``*args`` are traced (new data does not recompile); ``objective`` is static (pass the same function
object to reuse the compiled solver).

Example::

    def m2lnl(p, n):
        mu = p["s"] * signal + p["b"] * bkg
        return -2 * poisson_log_likelihood(n, mu, saturated=True)

    res = minimize(m2lnl, {"s": 1.0, "b": 1.0}, n_obs, bounds={"s": (0, 10), "b": (0, None)})
    res.best_fit, res.errors, res.minus2lnL, res.converged
    prof = profile(m2lnl, res, "s", np.linspace(0.5, 1.5, 41), n_obs, bounds=...)
    prof.interval(0.6827)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special as _sp, stats as _st

from cevnsjax.names import check_known
from cevnsjax.results import FitResult, ProfileResult
from cevnsjax.stats.optimize import Layout, layout_of, solve_batch

__all__ = [
    "FitResult",
    "ProfileResult",
    "allowed_intervals",
    "FisherResult",
    "TestResult",
    "minimize",
    "hessian_covariance",
    "profile",
    "delta_chi2",
    "p_value",
    "significance",
    "compare",
    "likelihood_ratio_test",
    "fisher_matrix",
]


def _bounds_arrays(layout: Layout, init, bounds):
    """Flat (lo, hi) arrays (+-inf for open sides), validated against ``init``."""
    bounds = dict(bounds or {})
    check_known(list(bounds), layout.keys, "bounded parameter")
    lo, hi = [], []
    for k, s in zip(layout.keys, layout.shapes):
        b = bounds.get(k, (None, None))
        if not (isinstance(b, (tuple, list)) and len(b) == 2):
            raise ValueError(f"bounds[{k!r}] = {b!r}; give a pair (lo, hi), None for an open side")
        l = np.broadcast_to(np.asarray(-np.inf if b[0] is None else b[0], float), s).ravel()
        h = np.broadcast_to(np.asarray(np.inf if b[1] is None else b[1], float), s).ravel()
        if np.any(np.isnan(l)) or np.any(np.isnan(h)) or np.any(l >= h):
            raise ValueError(f"bounds[{k!r}] = {b!r}: need lo < hi (None or +-inf for an open side)")
        v = np.ravel(np.asarray(init[k], float))
        if np.any(v < l) or np.any(v > h):
            raise ValueError(f"initial value of {k!r} = {init[k]!r} lies outside its bounds {b!r}")
        lo.extend(l.tolist())
        hi.extend(h.tolist())
    return np.asarray(lo, float), np.asarray(hi, float)


def _setup(init, bounds, fixed):
    """(layout, x0, lo, hi, free mask) with ``fixed`` names (list: held at init; dict: name -> value)."""
    if isinstance(init, FitResult):
        init = init.params
    layout = layout_of(init)
    fixed = dict.fromkeys(fixed) if isinstance(fixed, (list, tuple, set, frozenset)) else dict(fixed or {})
    check_known(list(fixed), layout.keys, "fixed parameter")
    init = {k: (fixed[k] if fixed.get(k) is not None else init[k]) for k in layout.keys}
    lo, hi = _bounds_arrays(layout, init, bounds)
    x0 = np.asarray(layout.ravel(init), float)
    free = np.ones(layout.size, bool)
    i = 0
    for k, s in zip(layout.keys, layout.shapes):
        n = int(np.prod(s, dtype=int))
        if k in fixed:
            free[i:i + n] = False
        i += n
    return layout, x0, lo, hi, free


def _starts(x0, lo, hi, free, n_starts, seed, start_scale):
    """``x0`` then random draws: uniform in two-sided boxes, x0 + scale (1 + |x0|) N(0, 1) otherwise."""
    rng = np.random.default_rng(seed)
    pts = [x0]
    box = np.isfinite(lo) & np.isfinite(hi)
    for _ in range(max(int(n_starts), 1) - 1):
        span = np.where(box, hi - lo, 1.0)
        uni = np.where(box, lo, 0.0) + span * rng.uniform(0.02, 0.98, x0.size)
        nrm = x0 + start_scale * (1.0 + np.abs(x0)) * rng.standard_normal(x0.size)
        p = np.clip(np.where(box, uni, nrm), lo, hi)
        pts.append(np.where(free, p, x0))
    return np.stack(pts)


def _tol(tol):
    return (1e-10 if jnp.result_type(float) == jnp.float64 else 1e-4) if tol is None else float(tol)


def _inv_half(H):
    """Covariance (H/2)^-1 from the Hessian H of -2 ln L; NaN if H is not positive definite."""
    if H.size == 0:
        return np.zeros((0, 0))
    A = 0.25 * (H + H.T)
    try:
        np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return np.full_like(A, np.nan)
    return np.linalg.inv(A)


def minimize(objective: Callable, init: Mapping | FitResult, *args, bounds: Mapping | None = None,
             fixed: Mapping | Sequence[str] | None = None, n_starts: int = 1, seed: int = 0,
             start_scale: float = 1.0, maxiter: int = 200, tol: float | None = None,
             hessian: bool = True, conv_tol: float = 1e-6) -> FitResult:
    """Minimise ``objective(params, *args)`` (= -2 ln L) within ``bounds``.

    Args:
        init: starting values (flat dict name -> scalar/array), or a previous FitResult.
        bounds: name -> (lo, hi); ``None`` for an open side.
        fixed: names held at their ``init`` value, or name -> value.
        n_starts: starts run in one vmap: ``init``, then uniform draws in two-sided boxes and
            ``init + start_scale (1 + |init|) N(0, 1)`` otherwise.
        maxiter, tol: Newton iterations stop after ``maxiter`` or once a step lowers -2 ln L by < tol.
        hessian: compute the covariance (H/2)^-1 (H: Hessian of -2 ln L over the free parameters).
        conv_tol: ``converged`` needs the Newton decrement g^T H^-1 g below this.
    """
    layout, x0, lo, hi, free = _setup(init, bounds, fixed)
    X0 = _starts(x0, lo, hi, free, n_starts, seed, start_scale)
    F = np.broadcast_to(free, X0.shape)
    x, v, dec, H, nit = (np.asarray(a) for a in solve_batch(
        objective, layout, jnp.asarray(X0), jnp.asarray(lo), jnp.asarray(hi), jnp.asarray(F),
        jnp.asarray(int(maxiter), jnp.int32), jnp.asarray(_tol(tol)), tuple(args)))
    v = np.where(np.isfinite(v), v, np.inf)
    b = int(np.argmin(v))
    xb = x[b]
    fi = np.flatnonzero(free)
    cov = _inv_half(H[b][np.ix_(fi, fi)]) if hessian else np.full((fi.size, fi.size), np.nan)
    names = layout.names
    msgs = []
    if hessian and np.isnan(cov).any():
        msgs.append("Hessian not positive definite")
    at_bound = [names[i] for i in fi if min(abs(xb[i] - lo[i]), abs(hi[i] - xb[i])) <= 1e-6 * (1 + abs(xb[i]))]
    if at_bound:
        msgs.append(f"at a bound: {at_bound}")
    d = float(dec[b])
    if not (abs(d) <= conv_tol):
        msgs.append(f"Newton decrement {d:.2g} > {conv_tol:g} after {int(nit[b])} iterations")
    ok = bool(np.isfinite(v[b]) and abs(d) <= conv_tol and not (hessian and fi.size and np.isnan(cov).any()
                                                                   and not at_bound))
    return FitResult(names=names, values=np.asarray(xb, float), free=tuple(map(bool, free)),
                     minus2lnL=float(v[b]), covariance=np.asarray(cov, float), converged=ok, n_iter=int(nit[b]),
                     decrement=d, start_minus2lnL=np.asarray(v, float), message="; ".join(msgs),
                     keys=layout.keys, shapes=layout.shapes)


def hessian_covariance(objective, params: Mapping, *args, free: Sequence[str] | None = None):
    """(Hessian of -2 ln L, covariance (H/2)^-1) of ``objective`` at ``params`` over the flat
    parameters named in ``free`` (default all). Covariance is NaN if H is not positive definite."""
    layout = layout_of(params)
    names = layout.names
    free = names if free is None else tuple(free)
    check_known(list(free), names)
    idx = np.asarray([names.index(n) for n in free], int)
    x0 = layout.ravel(params)
    g = lambda xf: objective(layout.unravel(x0.at[idx].set(xf)), *args)
    H = np.asarray(jax.jit(jax.hessian(g))(x0[idx]), float)
    return H, _inv_half(H)


def profile(objective: Callable, best: FitResult | Mapping, names: str | Sequence[str], values, *args,
            bounds: Mapping | None = None, fixed: Mapping | Sequence[str] | None = None, n_starts: int = 1,
            seed: int = 0, start_scale: float = 1.0, maxiter: int = 200, tol: float | None = None,
            conv_tol: float = 1e-6, vectorize: bool = False, progress: bool = False) -> ProfileResult:
    """Profile -2 ln L over ``names`` at the points ``values`` ((G,) for one name, (G, k) for k).

    Each point fixes ``names`` (plus ``fixed``) and minimises the other parameters with the same
    compiled solver as :func:`minimize` (the fixed set is data: no new trace). Default: points in
    order, each warm-started from the previous solution; ``vectorize=True`` solves all points in one
    vmap from ``best`` (one compile per number of points).
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    pts = np.asarray(values, float)
    pts2 = pts.reshape(-1, 1) if pts.ndim == 1 and len(names) == 1 else pts
    if pts2.ndim != 2 or pts2.shape[1] != len(names):
        raise ValueError(f"values of shape {pts.shape} for names {names}: give (G,) for one name or (G, {len(names)})")
    init = best.params if isinstance(best, FitResult) else dict(best)
    fx = dict.fromkeys(fixed) if isinstance(fixed, (list, tuple, set, frozenset)) else dict(fixed or {})
    check_known(list(names), list(init), "profiled parameter")
    layout, x0, lo, hi, free = _setup(init, bounds, {**fx, **dict.fromkeys(names)})
    idx = [layout.names.index(n) for n in names]
    for j, n in enumerate(names):
        if layout.shapes[layout.keys.index(n)] != ():
            raise ValueError(f"profile parameter {n!r} must be a scalar")
        if np.any(pts2[:, j] < lo[idx[j]]) or np.any(pts2[:, j] > hi[idx[j]]):
            raise ValueError(f"profile values of {n!r} leave its bounds ({lo[idx[j]]}, {hi[idx[j]]})")
    S = _starts(x0, lo, hi, free, n_starts, seed, start_scale)
    common = (jnp.asarray(lo), jnp.asarray(hi))
    it_tol = (jnp.asarray(int(maxiter), jnp.int32), jnp.asarray(_tol(tol)))
    G = len(pts2)

    def run(X0):
        out = solve_batch(objective, layout, jnp.asarray(X0), *common, jnp.asarray(np.broadcast_to(free, X0.shape)),
                          *it_tol, tuple(args))
        return [np.asarray(o) for o in out]

    if vectorize:
        X0 = np.repeat(S[None], G, 0)
        X0[:, :, idx] = pts2[:, None, :]
        x, v, dec, _, _ = run(X0.reshape(G * len(S), -1))
        v = np.where(np.isfinite(v), v, np.inf).reshape(G, len(S))
        b = np.argmin(v, 1)
        r = np.arange(G)
        xs, vs, ds = x.reshape(G, len(S), -1)[r, b], v[r, b], dec.reshape(G, len(S))[r, b]
    else:
        from tqdm.auto import tqdm

        xs, vs, ds = np.empty((G, layout.size)), np.empty(G), np.empty(G)
        prev = S
        for i in tqdm(range(G), disable=not progress, desc="profile"):
            X0 = prev.copy()
            X0[:, idx] = pts2[i]
            x, v, dec, _, _ = run(X0)
            v = np.where(np.isfinite(v), v, np.inf)
            b = int(np.argmin(v))
            xs[i], vs[i], ds[i] = x[b], v[b], dec[b]
            prev = np.concatenate([x[b:b + 1], S[1:]])
    fi = np.flatnonzero(free)
    ref = float(best.minus2lnL) if isinstance(best, FitResult) else np.inf
    return ProfileResult(names=names, values=pts, minus2lnL=vs, minus2lnL_min=float(min(ref, np.min(vs))),
                         converged=np.isfinite(vs) & (np.abs(ds) <= conv_tol),
                         nuisance_names=tuple(layout.names[i] for i in fi), nuisance=xs[:, fi])


# ---------------------------------------------------------------------------------------------- profiles
def allowed_intervals(x, d, threshold: float, crossing=None) -> list[list[float]]:
    """Every interval of the grid ``x`` (ascending) where ``d`` < ``threshold`` (e.g. Delta chi^2 < 2.71), as
    [lo, hi] pairs: disjoint islands (a sign-flipped Z' solution, a second NSI band) each give one.

    ``crossing(i_in, i_out)`` returns the crossing between grid points i_in (allowed) and i_out (excluded);
    default: linear interpolation of ``d`` in ``x``. An interval that reaches an end of the grid ends there.
    """
    x, d = np.asarray(x, float), np.asarray(d, float)
    if crossing is None:
        def crossing(i, o):
            return float(x[o] + (threshold - d[o]) * (x[i] - x[o]) / (d[i] - d[o]))
    inside = d < threshold
    out, i = [], 0
    while i < len(x):
        if not inside[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(x) and inside[j + 1]:
            j += 1
        lo = float(x[0]) if i == 0 else crossing(i, i - 1)
        hi = float(x[-1]) if j == len(x) - 1 else crossing(j, j + 1)
        out.append([lo, hi])
        i = j + 1
    return out


# -------------------------------------------------------------------------------------- hypothesis tests
@dataclass(frozen=True)
class TestResult:
    """Nested-hypothesis test by Wilks' theorem."""

    delta_chi2: float
    dof: int
    p_value: float
    significance: float
    null: FitResult | None = None
    alt: FitResult | None = None

    __test__ = False  # not a pytest class


def delta_chi2(null: FitResult | float, alt: FitResult | float) -> float:
    """Delta chi^2 = -2 ln(L_null / L_alt), clipped at 0 (numbers are -2 ln L values)."""
    n = null.minus2lnL if isinstance(null, FitResult) else float(null)
    a = alt.minus2lnL if isinstance(alt, FitResult) else float(alt)
    return max(n - a, 0.0)


def p_value(dchi2: float, dof: int = 1) -> float:
    """Asymptotic p-value chi2.sf(Delta chi^2, dof)."""
    return float(_st.chi2.sf(max(float(dchi2), 0.0), dof))


def significance(dchi2: float, dof: int = 1) -> float:
    """Gaussian-equivalent (two-sided) significance Z of Delta chi^2 with ``dof`` degrees of freedom.

    ``dof = 1``: Z = sqrt(Delta chi^2). More dof: p = chi2.sf(Delta chi^2, dof), then Z with
    chi2.sf(Z^2, 1) = p, computed in log space (no underflow for Z >~ 38).
    """
    d = max(float(dchi2), 0.0)
    if int(dof) != dof or dof < 1:
        raise ValueError(f"dof={dof!r} must be a positive integer")
    if dof == 1:
        return math.sqrt(d)
    logp = _chi2_logsf(d, dof)
    return float(max(-_sp.ndtri_exp(logp - math.log(2.0)), 0.0))


def _chi2_logsf(d, dof):
    """log chi2.sf, with the asymptotic series of Q(k/2, d/2) where scipy's value underflows."""
    logp = float(_st.chi2.logsf(d, dof))
    if np.isfinite(logp):
        return logp
    a, x = 0.5 * dof, 0.5 * d
    series, term = 1.0, 1.0
    for j in range(1, 8):
        term *= (a - j) / x
        series += term
    return (a - 1.0) * math.log(x) - x - math.lgamma(a) + math.log(series)


def compare(null: FitResult, alt: FitResult, dof: int | None = None) -> TestResult:
    """Compare nested fits; ``dof`` defaults to the difference in free parameters."""
    dof = alt.n_free - null.n_free if dof is None else int(dof)
    if dof < 1:
        raise ValueError(f"dof = {dof}: the alternative must have more free parameters than the null "
                         f"(null {null.free_names}, alternative {alt.free_names})")
    d = delta_chi2(null, alt)
    return TestResult(d, dof, p_value(d, dof), significance(d, dof), null, alt)


def likelihood_ratio_test(objective: Callable, init: Mapping, null: Mapping, *args, bounds: Mapping | None = None,
                          **fit_kw) -> TestResult:
    """Fit -2 ln L with all parameters free and with ``null`` (name -> value) fixed, then :func:`compare`."""
    alt = minimize(objective, init, *args, bounds=bounds, **fit_kw)
    start = dict(alt.params)
    start.update(null)
    h0 = minimize(objective, start, *args, bounds=bounds, fixed=dict(null), **fit_kw)
    return compare(h0, alt)


# ---------------------------------------------------------------------------------------------- Fisher
@dataclass
class FisherResult:
    """Fisher information over flat ``names``: ``matrix``, ``covariance`` = F^-1, ``errors`` (marginal
    widths sqrt(diag F^-1)) and ``conditional`` (widths with the others fixed, 1/sqrt(F_ii))."""

    names: tuple
    matrix: np.ndarray
    covariance: np.ndarray

    @property
    def errors(self) -> dict:
        return dict(zip(self.names, map(float, np.sqrt(np.diag(self.covariance)))))

    @property
    def conditional(self) -> dict:
        return dict(zip(self.names, map(float, 1.0 / np.sqrt(np.diag(self.matrix)))))


def fisher_matrix(expected: Callable, params: Mapping, *args, sigma=None, cov=None,
                  constraint_nll: Callable | None = None) -> FisherResult:
    """Fisher matrix of binned data at ``params`` from the Jacobian J of ``expected(params, *args)``.

    Poisson data (default): F = J^T diag(1/mu) J (equal to the Hessian of the Poisson nll on Asimov
    data at ``params``). Gaussian data: F = J^T C^-1 J with ``sigma`` or ``cov``.
    ``constraint_nll(params)`` (nuisance constraints / priors, as -ln, i.e. half their -2 ln L) adds its Hessian.
    """
    layout = layout_of(params)
    x0 = layout.ravel(params)
    f = lambda x: jnp.ravel(expected(layout.unravel(x), *args))
    J = np.asarray(jax.jacfwd(f)(x0), float)
    if sigma is not None and cov is not None:
        raise ValueError("give at most one of sigma= or cov= (neither means Poisson data)")
    if cov is not None:
        F = J.T @ np.linalg.solve(np.asarray(cov, float), J)
    else:
        w = 1.0 / np.asarray(f(x0), float) if sigma is None else 1.0 / np.broadcast_to(np.asarray(sigma, float) ** 2, J.shape[:1])
        F = J.T @ (J * w[:, None])
    if constraint_nll is not None:
        F = F + np.asarray(jax.hessian(lambda x: constraint_nll(layout.unravel(x)))(x0), float)
    return FisherResult(layout.names, F, _inv_half(2.0 * F))
