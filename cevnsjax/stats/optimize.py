"""The one optimiser core of cevnsjax: a projected, damped (Levenberg-Marquardt) Newton method.

Every objective is ``-2 ln L`` (chi^2-like). Parameters live on one flat vector; which of them are
fixed is DATA (a boolean ``free`` mask and the values in ``x0``), as are the box bounds ``lo``/``hi``
(+-inf for an open side), so a fit with a new set of fixed parameters, a new profile value or new
bounds reuses the compiled solver (no new trace). Bounds are handled by projection with an active
set (a variable at a bound whose gradient points outwards is held for that step), never by a
transform, so linear nuisances stay quadratic and converge in one step.

Each iteration: g, H = gradient and exact Hessian (forward over reverse; problems have <= ~25
parameters), step = -(H + lam diag|H|)^-1 g solved by the unrolled
:func:`cevnsjax.stats._linalg.small_solve` (batched LAPACK stalls the XLA CPU pool under vmap),
projected into the box; accepted only when the objective does not increase (lam x0.3 on success,
x10 on failure), so the iteration is monotone. Used by :func:`cevnsjax.stats.fit.minimize`,
:func:`cevnsjax.stats.fit.profile`, :class:`cevnsjax.stats.model.JointModel` and
:func:`cevnsjax.stats.scan.run_scan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.stats._linalg import small_solve

__all__ = ["newton", "Layout", "layout_of", "solve_batch"]


def newton(f, x0, lo, hi, n_iter, free=None, tol=0.0, lam0=1e-3, residuals=None):
    """Minimise ``f`` (flat vector -> scalar -2 ln L) from ``x0`` inside [lo, hi].

    ``free`` (bool, default all) marks the entries that move; ``n_iter`` (may be traced) bounds the
    iterations; with ``tol > 0`` the loop stops once an accepted step lowers ``f`` by less than
    ``tol`` and the predicted decrease is below ``tol`` too. Returns (x, f(x), Newton decrement
    g^T H^-1 g, free-Hessian at x (fixed/active rows are identity), free-and-inactive mask, iterations).

    ``residuals`` (flat vector -> r with ``f = sum(r**2)``, e.g. (data - model)/sigma and Gaussian
    priors as (x - mu)/sigma) switches the curvature to Gauss-Newton: g = 2 J^T r and H = 2 J^T J with
    the Jacobian J from n forward-mode JVPs (Levenberg-Marquardt proper). The minimum is the same
    (the gradient is exact); the steps differ only where the residuals' own curvature matters, and
    each costs a fraction of the exact Hessian (forward over reverse), which dominates profiled scans
    with several nuisances on CPU (benchmarks/bench_scan.py).
    """
    n = x0.shape[0]
    free = jnp.ones(n, bool) if free is None else jnp.asarray(free, bool)
    grad, hess = jax.grad(f), jax.hessian(f)

    def derivatives(x):
        if residuals is None:
            return grad(x), hess(x)
        J, r = jax.jacfwd(lambda z: (residuals(z),) * 2, has_aux=True)(x)
        return 2.0 * (r @ J), 2.0 * (J.T @ J)

    def system(x):
        g, H = derivatives(x)
        at_bound = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        move = free & ~at_bound
        m = move[:, None] & move[None, :]
        H = jnp.where(m, H, 0.0) + jnp.diag(jnp.where(move, 0.0, 1.0))
        g = jnp.where(move, g, 0.0)
        return g, H, move

    def body(st):
        x, fx, lam, it, _ = st
        g, H, move = system(x)
        d = jnp.abs(jnp.diagonal(H))
        d = jnp.maximum(d, 1e-12 * jnp.max(d) + jnp.finfo(x.dtype).tiny)
        step = small_solve(H + lam * jnp.diag(d), -g)
        xn = jnp.clip(x + jnp.where(move, step, 0.0), lo, hi)
        fn = f(xn)
        ok = jnp.isfinite(fn) & (fn <= fx) & jnp.all(jnp.isfinite(xn))
        done = ok & (fx - fn < tol) & (-(g @ step) < tol)
        x = jnp.where(ok, xn, x)
        fx = jnp.where(ok, fn, fx)
        lam = jnp.clip(jnp.where(ok, lam * 0.3, lam * 10.0), 1e-9, 1e12)
        return x, fx, lam, it + 1, done

    def cond(st):
        return (st[3] < n_iter) & ~st[4]

    x0 = jnp.clip(x0, lo, hi)
    st = (x0, f(x0), jnp.asarray(lam0, x0.dtype), jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    x, fx, _, it, _ = jax.lax.while_loop(cond, body, st)
    g, H, move = system(x)
    dec = g @ small_solve(H, g)
    return x, fx, dec, H, move, it


# ----------------------------------------------------------------------------------- flat parameters
def _flat_names(key, shape):
    if shape == ():
        return [key]
    return [f"{key}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape)]


@dataclass(frozen=True)
class Layout:
    """Static description of a flat dict of named parameters (hashable; part of the compile key)."""

    keys: tuple
    shapes: tuple

    @property
    def names(self) -> tuple:
        return tuple(n for k, s in zip(self.keys, self.shapes) for n in _flat_names(k, s))

    @property
    def size(self) -> int:
        return len(self.names)

    def ravel(self, params) -> jax.Array:
        dt = jnp.result_type(float)
        return jnp.concatenate([jnp.ravel(jnp.asarray(params[k], dtype=dt)) for k in self.keys])

    def unravel(self, x):
        out, i = {}, 0
        for k, s in zip(self.keys, self.shapes):
            n = int(np.prod(s, dtype=int))
            out[k] = x[..., i:i + n].reshape(x.shape[:-1] + s)
            i += n
        return out

    def unravel_np(self, x):
        return {k: (float(v) if v.shape == () else v) for k, v in self.unravel(np.asarray(x, float)).items()}


def layout_of(init: Mapping) -> Layout:
    if not isinstance(init, Mapping) or not init:
        raise TypeError(f"parameters must be a non-empty dict of name -> value, got {type(init).__name__}")
    for k in init:
        if not isinstance(k, str):
            raise TypeError(f"parameter names must be strings, got {k!r}")
    return Layout(tuple(init), tuple(tuple(np.shape(init[k])) for k in init))


# ------------------------------------------------------------------------------------ compiled solver
@partial(jax.jit, static_argnames=("objective", "layout"))
def solve_batch(objective, layout: Layout, X0, lo, hi, free, maxiter, tol, args):
    """Minimise ``objective(params, *args)`` (-2 ln L) from every row of ``X0`` (B, n) with masks
    ``free`` (B, n); compiled once per (objective, layout, B): bounds, masks, starts, ``maxiter`` and
    ``tol`` are data. Returns (x, f, decrement, Hessian of f over all entries at x, iterations)."""

    def f(x):
        val = objective(layout.unravel(x), *args)
        return jnp.where(jnp.isfinite(val), val, jnp.inf)

    def one(x0, fr):
        x, fx, dec, _, _, it = newton(f, x0, lo, hi, maxiter, fr, tol)
        return x, fx, dec, jax.hessian(f)(x), it

    return jax.vmap(one)(X0, free)
