"""Maximum likelihood, profile likelihood, nested-hypothesis tests and Fisher matrices.

The objective is a negative log-likelihood ``nll(params, *args) -> scalar`` (``-ln L``, not
``-2 ln L``; for a chi^2 pass ``0.5 * chi2``), where ``params`` is a flat dict of named scalars or
arrays, e.g. ``{"sin2_theta_w": 0.24, "bkg": 10.0}``. Box bounds ``{"bkg": (0, None)}`` are handled
by a transform to unconstrained space (sigmoid for two finite bounds, softplus for one); the
optimiser (optax Adam, then L-BFGS with a zoom line search) runs there, from several starts at once
(``vmap``), and the best start wins. Uncertainties come from the Hessian of ``nll`` at the best fit in
the *original* parametrisation (covariance = H^-1). Profiles fix the scanned parameters on a grid
and re-minimise the others, all grid points in one ``vmap``, each warm-started at the best fit.

``*args`` are traced (new data does not recompile); ``nll`` and the settings are static.

Example::

    def nll(p, n):
        mu = p["s"] * signal + p["b"] * bkg
        return -poisson_log_likelihood(n, mu, saturated=True)

    res = minimize(nll, {"s": 1.0, "b": 1.0}, n_obs, bounds={"s": (0, 10), "b": (0, None)})
    res.params, res.errors, res.minus2lnL, res.converged
    prof = profile(nll, res, "s", np.linspace(0.5, 1.5, 41), n_obs, bounds=...)
    prof.interval(0.6827)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
from scipy import special as _sp
from scipy import stats as _st

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


# --------------------------------------------------------------------------------------------- params
def _flat_names(key, shape):
    if shape == ():
        return [key]
    return [f"{key}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


@dataclass(frozen=True)
class _Layout:
    """Static description of a flat dict of parameters and their bounds (hashable, jit-static)."""

    keys: tuple
    shapes: tuple
    names: tuple  # flat element names
    lo: tuple
    hi: tuple

    @property
    def size(self):
        return len(self.names)

    def ravel(self, params) -> jax.Array:
        return jnp.concatenate([jnp.ravel(jnp.asarray(params[k], dtype=_float())) for k in self.keys])

    def unravel(self, x):
        out, i = {}, 0
        for k, s in zip(self.keys, self.shapes):
            n = int(np.prod(s, dtype=int))
            out[k] = x[i:i + n].reshape(s)
            i += n
        return out

    def unravel_np(self, x):
        return {k: (float(v) if v.shape == () else v) for k, v in self.unravel(np.asarray(x, float)).items()}


def _float():
    return jnp.result_type(float)


def _layout(init, bounds) -> _Layout:
    if not isinstance(init, Mapping) or not init:
        raise TypeError(f"parameters must be a non-empty dict of name -> value, got {type(init).__name__}")
    for k in init:
        if not isinstance(k, str):
            raise TypeError(f"parameter names must be strings, got {k!r}")
    keys = tuple(init)
    shapes = tuple(tuple(np.shape(init[k])) for k in keys)
    names = tuple(n for k, s in zip(keys, shapes) for n in _flat_names(k, s))
    bounds = dict(bounds or {})
    unknown = [k for k in bounds if k not in init]
    if unknown:
        raise ValueError(f"bounds given for unknown parameter(s) {unknown}; valid parameters: {list(keys)}")
    lo, hi = [], []
    for k, s in zip(keys, shapes):
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
    return _Layout(keys, shapes, names, tuple(lo), tuple(hi))


def _check_names(names, valid, what="parameter"):
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"unknown {what}(s) {bad}; valid choices: {list(valid)}")


# ------------------------------------------------------------------------------------------ transforms
def _kinds(lo, hi):
    lo, hi = np.asarray(lo), np.asarray(hi)
    fl, fh = np.isfinite(lo), np.isfinite(hi)
    kind = np.where(fl & fh, 1, np.where(fl, 2, np.where(fh, 3, 0)))
    lo_s = np.where(fl, lo, 0.0)
    hi_s = np.where(fh, hi, lo_s + 1.0)
    return kind, lo_s, hi_s


def _to_x(u, kind, lo, hi):
    """Unconstrained -> bounded (every branch finite, so gradients never pick up inf * 0)."""
    both = lo + (hi - lo) * jax.nn.sigmoid(u)
    low = lo + jax.nn.softplus(u)
    high = hi - jax.nn.softplus(u)
    return jnp.where(kind == 1, both, jnp.where(kind == 2, low, jnp.where(kind == 3, high, u)))


def _softplus_inv(y):
    y = np.maximum(y, 1e-300)
    return y + np.log(-np.expm1(-y))


def _to_u(x, kind, lo, hi):
    x = np.asarray(x, float)
    frac = np.clip((x - lo) / (hi - lo), 1e-12, 1 - 1e-12)
    both = np.log(frac) - np.log1p(-frac)
    low = _softplus_inv(np.maximum(x - lo, 1e-12 * (1 + np.abs(lo))))
    high = _softplus_inv(np.maximum(hi - x, 1e-12 * (1 + np.abs(hi))))
    return np.where(kind == 1, both, np.where(kind == 2, low, np.where(kind == 3, high, x)))


# ------------------------------------------------------------------------------------------ optimiser
@dataclass(frozen=True)
class _Problem:
    layout: _Layout
    free: tuple  # indices of free flat parameters
    adam_steps: int
    adam_lr: float
    maxiter: int
    gtol: float


def _objective(nll, prob: _Problem, x_full, args):
    kind, lo, hi = _kinds(prob.layout.lo, prob.layout.hi)
    free = np.asarray(prob.free, int)
    kind, lo, hi = kind[free], lo[free], hi[free]

    def f(u):
        x = x_full.at[free].set(_to_x(u, kind, lo, hi))
        val = nll(prob.layout.unravel(x), *args)
        return jnp.where(jnp.isfinite(val), val, jnp.inf)

    return f


def _solve_one(nll, prob: _Problem, u0, x_full, args):
    f = _objective(nll, prob, x_full, args)
    vg = jax.value_and_grad(f)

    # stage 1: Adam, keeping the best point seen (robust far from the optimum)
    if prob.adam_steps > 0:
        adam = optax.adam(prob.adam_lr)

        def body(carry, _):
            u, s, ub, fb = carry
            v, g = vg(u)
            better = v < fb
            ub = jnp.where(better, u, ub)
            fb = jnp.where(better, v, fb)
            g = jnp.where(jnp.isfinite(g), g, 0.0)
            upd, s = adam.update(g, s, u)
            return (optax.apply_updates(u, upd), s, ub, fb), None

        (u_last, _, ub, fb), _ = jax.lax.scan(body, (u0, adam.init(u0), u0, f(u0)), None, length=prob.adam_steps)
        f_last = f(u_last)
        u0 = jnp.where(f_last < fb, u_last, ub)

    # stage 2: L-BFGS with a zoom line search
    solver = optax.lbfgs()
    vgs = optax.value_and_grad_from_state(f)

    def step(carry):
        u, state, stall = carry
        v, g = vgs(u, state=state)
        upd, state = solver.update(g, state, u, value=v, grad=g, value_fn=f)
        stall = jnp.where(otu.tree_get(state, "value") < v, 0, stall + 1)
        return optax.apply_updates(u, upd), state, stall

    def cond(carry):
        _, state, stall = carry
        it = otu.tree_get(state, "count")
        g = otu.tree_get(state, "grad")
        v = otu.tree_get(state, "value")
        err = jnp.max(jnp.abs(g)) if g.size else jnp.zeros(())
        # stop at gtol, maxiter, a non-finite value, or after 5 steps without decrease (precision floor)
        return (it == 0) | ((it < prob.maxiter) & (err >= prob.gtol) & jnp.isfinite(v) & (stall < 5))

    u, state, _ = jax.lax.while_loop(cond, step, (u0, solver.init(u0), jnp.zeros((), jnp.int32)))
    v, g = vg(u)
    gmax = jnp.max(jnp.abs(g)) if g.size else jnp.zeros(())
    return u, v, gmax, otu.tree_get(state, "count")


@partial(jax.jit, static_argnames=("nll", "prob"))
def _solve_batch(nll, prob, u0, x_full, args):
    """u0 (..., S, n_free), x_full (..., n): vmapped over all leading axes and starts."""
    one = lambda u, x: _solve_one(nll, prob, u, x, args)
    starts = jax.vmap(one, in_axes=(0, None))
    fn = starts
    for _ in range(x_full.ndim - 1):
        fn = jax.vmap(fn, in_axes=(0, 0))
    return fn(u0, x_full)


def _starts(prob, x_full, n_starts, seed, start_scale, extra=()):
    """Initial points in unconstrained space: the given point, ``extra`` ones, then random draws."""
    kind, lo, hi = _kinds(prob.layout.lo, prob.layout.hi)
    free = np.asarray(prob.free, int)
    kind, lo, hi = kind[free], lo[free], hi[free]
    pts = [_to_u(np.asarray(x_full)[free], kind, lo, hi)] + [_to_u(e, kind, lo, hi) for e in extra]
    rng = np.random.default_rng(seed)
    for _ in range(max(n_starts - len(pts), 0)):
        uni = lo + (hi - lo) * rng.uniform(0.02, 0.98, size=free.size)
        u = np.where(kind == 1, _to_u(uni, kind, lo, hi), pts[0] + start_scale * rng.standard_normal(free.size))
        pts.append(u)
    return np.stack(pts[:max(n_starts, 1)])


# ---------------------------------------------------------------------------------------------- results
@dataclass
class FitResult:
    """Maximum-likelihood fit.

    Attributes:
        names: flat parameter names (``"a"``, ``"v[0]"``, ...) in the order of ``values``.
        values: best-fit values (flat, original parametrisation).
        free: which flat parameters were fitted (the others were held fixed).
        nll: ``-ln L`` at the best fit; ``minus2lnL`` is twice that.
        covariance: inverse Hessian of ``nll`` over the free parameters (``free_names`` order);
            NaN where the Hessian is not positive definite (e.g. a parameter at a bound).
        converged: all of: finite ``nll``, max |gradient| (unconstrained) <= gtol, Hessian positive
            definite.
        n_iter: L-BFGS iterations of the best start (after ``adam_steps`` Adam steps).
        start_nll: final ``nll`` of every start (spread = multi-modality diagnostic).
    """

    names: tuple
    values: np.ndarray
    free: tuple
    nll: float
    covariance: np.ndarray
    converged: bool
    n_iter: int
    grad_norm: float
    start_nll: np.ndarray
    message: str = ""
    keys: tuple = ()
    shapes: tuple = ()

    @property
    def minus2lnL(self) -> float:
        return 2.0 * self.nll

    @property
    def free_names(self) -> tuple:
        return tuple(n for n, f in zip(self.names, self.free) if f)

    @property
    def n_free(self) -> int:
        return int(sum(self.free))

    @property
    def params(self) -> dict:
        """Best fit as a dict shaped like the initial parameters."""
        lay = _Layout(tuple(self.keys), tuple(tuple(s) for s in self.shapes), tuple(self.names), (), ())
        return lay.unravel_np(self.values)

    @property
    def best_fit(self) -> dict:
        """Best fit as flat name -> float."""
        return dict(zip(self.names, map(float, self.values)))

    @property
    def errors(self) -> dict:
        """Hessian (1 sigma) errors of the free parameters."""
        d = np.sqrt(np.diag(self.covariance)) if self.covariance.size else np.zeros(0)
        return dict(zip(self.free_names, map(float, d)))

    @property
    def correlation(self) -> np.ndarray:
        d = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(d, d)

    def __repr__(self) -> str:
        err = self.errors
        rows = [f"  {n:<24s} {v: .6g}" + (f" +- {err[n]:.3g}" if n in err else "  (fixed)")
                for n, v in zip(self.names, self.values)]
        return (f"FitResult(-2lnL={self.minus2lnL:.6g}, converged={self.converged}, n_iter={self.n_iter}"
                f"{', ' + self.message if self.message else ''})\n" + "\n".join(rows))

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("values", "covariance", "start_nll"):
            d[k] = np.asarray(d[k]).tolist()
        d["shapes"] = [list(s) for s in self.shapes]
        d["kind"] = "FitResult"
        return d

    def save(self, path) -> None:
        """Write as JSON (NaN written as NaN, which Python's json reads back)."""
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)

    @classmethod
    def load(cls, path) -> "FitResult":
        with open(path) as fh:
            d = json.load(fh)
        d.pop("kind", None)
        d["values"] = np.asarray(d["values"], float)
        d["covariance"] = np.asarray(d["covariance"], float).reshape(sum(d["free"]), sum(d["free"]))
        d["start_nll"] = np.asarray(d["start_nll"], float)
        for k in ("names", "free", "keys"):
            d[k] = tuple(d[k])
        d["shapes"] = tuple(tuple(s) for s in d["shapes"])
        return cls(**d)


def _prepare(nll, init, bounds, fixed, adam_steps, adam_lr, maxiter, gtol):
    if isinstance(init, FitResult):
        init = init.params
    layout = _layout(init, bounds)
    fixed = dict.fromkeys(fixed) if isinstance(fixed, (list, tuple, set, frozenset)) else dict(fixed or {})
    _check_names(fixed, layout.keys)
    init = {k: (fixed[k] if fixed.get(k) is not None else init[k]) for k in layout.keys}
    x0 = np.asarray(layout.ravel(init))
    fixed_flat = {n for k, s in zip(layout.keys, layout.shapes) if k in fixed for n in _flat_names(k, s)}
    free = tuple(i for i, n in enumerate(layout.names) if n not in fixed_flat)
    if gtol is None:
        gtol = 1e-6 if _float() == jnp.float64 else 1e-2
    prob = _Problem(layout, free, int(adam_steps), float(adam_lr), int(maxiter), float(gtol))
    return prob, x0


def hessian_covariance(nll, params: Mapping, *args, free: Sequence[str] | None = None):
    """(Hessian, covariance) of ``nll`` at ``params`` over the flat parameters named in ``free``
    (default: all), in the original parametrisation. Covariance is NaN if H is not positive definite."""
    layout = _layout(params, None)
    free = layout.names if free is None else tuple(free)
    _check_names(free, layout.names)
    idx = tuple(layout.names.index(n) for n in free)
    H = np.asarray(_hessian(nll, layout, idx, layout.ravel(params), tuple(args)), float)
    return H, _inv_pd(H)


@partial(jax.jit, static_argnames=("nll", "layout", "idx"))
def _hessian(nll, layout, idx, x0, args):
    idx = np.asarray(idx, int)
    g = lambda xf: nll(layout.unravel(x0.at[idx].set(xf)), *args)
    return jax.hessian(g)(x0[idx])


def _inv_pd(H):
    if H.size == 0:
        return np.zeros((0, 0))
    H = 0.5 * (H + H.T)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return np.full_like(H, np.nan)
    return np.linalg.inv(H)


def minimize(nll: Callable, init: Mapping | FitResult, *args, bounds: Mapping | None = None,
             fixed: Mapping | Sequence[str] | None = None, n_starts: int = 1, seed: int = 0,
             start_scale: float = 1.0, adam_steps: int = 100, adam_lr: float = 0.05,
             maxiter: int = 500, gtol: float | None = None, hessian: bool = True) -> FitResult:
    """Minimise ``nll(params, *args)`` (= -ln L) within ``bounds``.

    Args:
        init: starting values (flat dict name -> scalar/array), or a previous FitResult.
        bounds: name -> (lo, hi); ``None`` for an open side.
        fixed: names held at their ``init`` value, or name -> value.
        n_starts: starts run in one vmap: ``init``, then uniform draws in two-sided boxes and
            ``init + start_scale * N(0, 1)`` (unconstrained space) otherwise.
        adam_steps, adam_lr: Adam pre-optimisation in unconstrained space (0 to skip).
        maxiter, gtol: L-BFGS stops when max |d nll / d u| < gtol (default 1e-6 in float64, 1e-2 in
            float32, where the value's rounding limits the line search), after maxiter iterations, or
            after 5 iterations without decrease.
        hessian: compute the covariance (inverse Hessian in the original parametrisation).
    """
    prob, x0 = _prepare(nll, init, bounds, fixed, adam_steps, adam_lr, maxiter, gtol)
    if not prob.free:
        v = float(nll(prob.layout.unravel(jnp.asarray(x0)), *args))
        return _result(prob, x0, v, np.zeros((0, 0)), np.isfinite(v), 0, 0.0, np.array([v]), "no free parameters")
    u0 = jnp.asarray(_starts(prob, x0, n_starts, seed, start_scale))
    u, v, gmax, nit = _solve_batch(nll, prob, u0, jnp.asarray(x0), tuple(args))
    v = np.where(np.isfinite(np.asarray(v)), np.asarray(v), np.inf)
    b = int(np.argmin(v))
    kind, lo, hi = _kinds(prob.layout.lo, prob.layout.hi)
    free = np.asarray(prob.free, int)
    x = x0.copy()
    x[free] = np.asarray(_to_x(u[b], kind[free], lo[free], hi[free]))
    msgs = []
    cov = np.full((free.size, free.size), np.nan)
    if hessian:
        _, cov = hessian_covariance(nll, prob.layout.unravel_np(x), *args,
                                    free=[prob.layout.names[i] for i in free])
        if np.isnan(cov).any():
            msgs.append("Hessian not positive definite")
    at_bound = [prob.layout.names[i] for i in free
                if min(abs(x[i] - prob.layout.lo[i]), abs(prob.layout.hi[i] - x[i])) <= 1e-6 * (1 + abs(x[i]))]
    if at_bound:
        msgs.append(f"at a bound: {at_bound}")
    gtol = prob.gtol
    ok = bool(np.isfinite(v[b]) and float(gmax[b]) <= gtol and not (hessian and np.isnan(cov).any()))
    if float(gmax[b]) > gtol:
        msgs.append(f"gradient {float(gmax[b]):.2g} > gtol after {int(nit[b])} iterations")
    return _result(prob, x, float(v[b]), cov, ok, int(nit[b]), float(gmax[b]), v, "; ".join(msgs))


def _result(prob, x, v, cov, ok, nit, gmax, start_nll, msg):
    lay = prob.layout
    free = tuple(i in set(prob.free) for i in range(lay.size))
    return FitResult(names=lay.names, values=np.asarray(x, float), free=free, nll=float(v),
                     covariance=np.asarray(cov, float), converged=bool(ok), n_iter=int(nit), grad_norm=float(gmax),
                     start_nll=np.asarray(start_nll, float), message=msg, keys=lay.keys, shapes=lay.shapes)


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


@dataclass
class ProfileResult:
    """Profile likelihood over a 1-D or 2-D grid of ``names``.

    ``nll`` has the grid's shape (``len(grid[0])`` or ``(len(grid[0]), len(grid[1]))``);
    ``delta_chi2 = 2 (nll - nll_min)`` with ``nll_min`` the smaller of the global fit and the grid
    minimum; ``nuisance`` holds the profiled flat parameters at every grid point.
    """

    names: tuple
    grid: tuple
    nll: np.ndarray
    nll_min: float
    converged: np.ndarray
    nuisance_names: tuple
    nuisance: np.ndarray

    @property
    def delta_chi2(self) -> np.ndarray:
        return 2.0 * (self.nll - self.nll_min)

    def minimum(self) -> dict:
        """Grid point with the smallest profiled nll."""
        i = np.unravel_index(np.nanargmin(self.nll), self.nll.shape)
        return {n: float(g[j]) for n, g, j in zip(self.names, self.grid, i)}

    def interval(self, cl: float = 0.6827) -> tuple:
        """1-D interval where Delta chi^2 < chi2.ppf(cl, 1) (1.0 for 68.27 %), by linear interpolation
        between grid points. An end that does not cross inside the grid is returned as the grid edge
        (widen the grid if ``delta_chi2`` at an end is below the threshold)."""
        if len(self.names) != 1:
            raise ValueError(f"interval() needs a 1-D profile; this one is over {self.names}")
        x, d = np.asarray(self.grid[0]), self.delta_chi2
        t = _st.chi2.ppf(cl, 1)
        i0 = int(np.nanargmin(d))
        lo = x[0]
        for i in range(i0, 0, -1):
            if d[i - 1] >= t:
                lo = x[i - 1] + (t - d[i - 1]) * (x[i] - x[i - 1]) / (d[i] - d[i - 1])
                break
        hi = x[-1]
        for i in range(i0, len(x) - 1):
            if d[i + 1] >= t:
                hi = x[i] + (t - d[i]) * (x[i + 1] - x[i]) / (d[i + 1] - d[i])
                break
        return float(lo), float(hi)

    def to_dict(self) -> dict:
        return dict(kind="ProfileResult", names=list(self.names), grid=[np.asarray(g).tolist() for g in self.grid],
                    nll=self.nll.tolist(), nll_min=self.nll_min, converged=self.converged.tolist(),
                    nuisance_names=list(self.nuisance_names), nuisance=self.nuisance.tolist())

    def save(self, path) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh)

    @classmethod
    def load(cls, path) -> "ProfileResult":
        with open(path) as fh:
            d = json.load(fh)
        return cls(names=tuple(d["names"]), grid=tuple(np.asarray(g) for g in d["grid"]), nll=np.asarray(d["nll"]),
                   nll_min=d["nll_min"], converged=np.asarray(d["converged"], bool),
                   nuisance_names=tuple(d["nuisance_names"]), nuisance=np.asarray(d["nuisance"]))


def profile(nll: Callable, best: FitResult | Mapping, names: str | Sequence[str], grids, *args,
            bounds: Mapping | None = None, n_starts: int = 1, seed: int = 0, start_scale: float = 1.0,
            adam_steps: int = 0, adam_lr: float = 0.05, maxiter: int = 500, gtol: float | None = None,
            chunk_size: int | None = None) -> ProfileResult:
    """Profile likelihood over scalar parameter(s) ``names`` (one or two) on ``grids``.

    Every grid point fixes ``names`` and minimises the other parameters, all points in one vmap,
    each warm-started at ``best`` (plus ``n_starts - 1`` random starts). A 2-D profile takes
    ``grids=(x, y)`` and returns ``nll`` of shape ``(len(x), len(y))``. ``chunk_size`` bounds the
    number of grid points per vmap (memory).
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    if len(names) not in (1, 2):
        raise ValueError(f"profile over 1 or 2 parameters, got {names}")
    grids = (grids,) if len(names) == 1 and np.ndim(grids[0]) == 0 else tuple(grids)
    if len(grids) != len(names):
        raise ValueError(f"{len(names)} parameter(s) {names} but {len(grids)} grid(s)")
    init = best.params if isinstance(best, FitResult) else dict(best)
    prob, x0 = _prepare(nll, init, bounds, list(names), adam_steps, adam_lr, maxiter, gtol)
    lay = prob.layout
    for n in names:
        if lay.shapes[lay.keys.index(n)] != ():
            raise ValueError(f"profile parameter {n!r} must be a scalar")
    idx = [lay.names.index(n) for n in names]
    mesh = np.meshgrid(*[np.asarray(g, float) for g in grids], indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], -1)  # (G, k)
    for j, n in enumerate(names):
        if np.any(pts[:, j] < lay.lo[idx[j]]) or np.any(pts[:, j] > lay.hi[idx[j]]):
            raise ValueError(f"grid for {n!r} leaves its bounds ({lay.lo[idx[j]]}, {lay.hi[idx[j]]})")
    X = np.repeat(x0[None], len(pts), 0)
    X[:, idx] = pts
    free = np.asarray(prob.free, int)
    u0 = _starts(prob, x0, n_starts, seed, start_scale)  # same starts for every point (warm: best fit)
    G = len(pts)
    chunk = G if chunk_size is None else int(chunk_size)
    vals, us, ok = [], [], []
    for s in range(0, G, chunk):
        Xc = X[s:s + chunk]
        U0 = np.broadcast_to(u0, (len(Xc),) + u0.shape)
        u, v, gmax, _ = _solve_batch(nll, prob, jnp.asarray(U0), jnp.asarray(Xc), tuple(args))
        v = np.where(np.isfinite(np.asarray(v)), np.asarray(v), np.inf)
        b = np.argmin(v, axis=1)
        r = np.arange(len(Xc))
        vals.append(v[r, b])
        us.append(np.asarray(u)[r, b])
        ok.append(np.asarray(gmax)[r, b] <= prob.gtol)
    vals, us, ok = np.concatenate(vals), np.concatenate(us), np.concatenate(ok)
    kind, lo, hi = _kinds(lay.lo, lay.hi)
    nuis = np.asarray(_to_x(jnp.asarray(us), kind[free], lo[free], hi[free])) if free.size else np.zeros((G, 0))
    ref = float(best.nll) if isinstance(best, FitResult) else np.inf
    shape = tuple(len(g) for g in grids)
    return ProfileResult(names=names, grid=tuple(np.asarray(g, float) for g in grids), nll=vals.reshape(shape),
                         nll_min=float(min(ref, np.min(vals))), converged=ok.reshape(shape),
                         nuisance_names=tuple(lay.names[i] for i in free), nuisance=nuis.reshape(shape + (free.size,)))


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
    """Delta chi^2 = -2 ln(L_null / L_alt) = 2 (nll_null - nll_alt), clipped at 0."""
    n = null.nll if isinstance(null, FitResult) else float(null) / 2.0
    a = alt.nll if isinstance(alt, FitResult) else float(alt) / 2.0
    return max(2.0 * (n - a), 0.0)


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


def likelihood_ratio_test(nll: Callable, init: Mapping, null: Mapping, *args, bounds: Mapping | None = None,
                          **fit_kw) -> TestResult:
    """Fit with all parameters free and with ``null`` (name -> value) fixed, then :func:`compare`."""
    alt = minimize(nll, init, *args, bounds=bounds, **fit_kw)
    start = dict(alt.params)
    start.update(null)
    h0 = minimize(nll, start, *args, bounds=bounds, fixed=dict(null), **fit_kw)
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
    ``constraint_nll(params)`` (nuisance constraints / priors, as -ln) adds its Hessian.
    """
    layout = _layout(params, None)
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
    return FisherResult(layout.names, F, _inv_pd(F))
