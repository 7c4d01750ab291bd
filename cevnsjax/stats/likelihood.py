"""Likelihood terms: Poisson counts, Gaussian chi^2, nuisance constraints, Asimov data.

All functions are pure JAX, jit/grad/vmap-able, and continuous in the observed counts, so Asimov
data (non-integer expected counts used as data) work everywhere. Argument order follows
``scipy.stats``: observed first, expected second.

Conventions
-----------
* ``poisson_log_likelihood(n, mu)`` is ``sum n ln(mu) - mu - lgamma(n + 1)`` (equal to
  ``scipy.stats.poisson.logpmf`` for integer ``n``). With ``saturated=True`` the saturated-model
  value (``mu = n``) is subtracted, so ``-2 lnL = poisson_deviance(n, mu)``: zero for a perfect fit,
  chi^2-like (Wilks) otherwise, and ``-2 Delta lnL`` between two fits is unchanged.
* Inside the logarithm, expected counts are floored at sqrt(smallest normal float) (1.5e-154 in
  float64, 1.1e-19 in float32), so ``mu -> 0`` gives a finite value and finite gradients (zero
  gradient of the log term below the floor) instead of NaN; ``n = 0`` bins contribute ``-mu``
  (no ``0 * log 0``).
* Constraint terms return log-likelihood contributions (``<= 0``); with ``normalized=True`` they are
  the full log-density (equal to ``scipy.stats.norm.logpdf`` / ``lognorm.logpdf``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

__all__ = [
    "poisson_log_likelihood",
    "poisson_deviance",
    "gaussian_chi2",
    "gaussian_log_likelihood",
    "gaussian_constraint",
    "lognormal_constraint",
    "asimov",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _floor(mu):
    mu = jnp.asarray(mu)
    if not jnp.issubdtype(mu.dtype, jnp.floating):
        mu = mu.astype(jnp.result_type(float))
    floor = jnp.sqrt(jnp.finfo(mu.dtype).tiny)  # 1.5e-154 (float64), 1.1e-19 (float32)
    return jnp.where(mu > floor, mu, floor)  # where, not maximum: no inf * 0 in the gradient


def _xlogy(x, y):
    """x * log(y) with 0 * log(0) = 0 and no NaN gradients (double-where)."""
    pos = x > 0
    safe_y = jnp.where(pos, y, 1.0)
    return jnp.where(pos, x * jnp.log(safe_y), 0.0)


def _sum(x, axis):
    return jnp.sum(x, axis=axis)


def poisson_log_likelihood(observed, expected, *, saturated: bool = False, axis=None):
    """Poisson log-likelihood of ``observed`` counts given ``expected`` counts, summed over ``axis``.

    Continuous in ``observed`` (``lgamma(n + 1)`` replaces ``log n!``). ``saturated=True`` subtracts
    the saturated-model value, giving ``-0.5 * poisson_deviance(observed, expected)``.
    ``axis=None`` sums everything; pass e.g. ``axis=-1`` to keep a batch axis.
    """
    mu_log = _floor(expected)  # floored inside the log only
    mu = jnp.asarray(expected).astype(mu_log.dtype)
    n = jnp.asarray(observed).astype(mu.dtype)
    if saturated:
        # n ln(mu / n) as n log1p((mu - n) / n): no cancellation between two large n ln n-sized
        # terms, so float32 keeps its precision at high counts
        # (log1p near mu = n, one log of the ratio elsewhere; n - mu added last as one difference)
        pos = n > 0
        n_s = jnp.where(pos, n, 1.0)
        rel = (mu_log - n) / n_s
        near = pos & (jnp.abs(rel) < 0.5)
        log_ratio = jnp.where(near, jnp.log1p(jnp.where(near, rel, 0.0)),
                              jnp.log(jnp.where(near, 1.0, mu_log / n_s)))
        per = jnp.where(pos, n * log_ratio, 0.0) + (n - mu)
    else:
        per = _xlogy(n, mu_log) - gammaln(n + 1.0) - mu
    return _sum(per, axis)


def poisson_deviance(observed, expected, *, axis=None):
    """Poisson deviance ``2 sum[mu - n + n ln(n / mu)]`` (= -2 lnL relative to the saturated model).

    Asymptotically chi^2-distributed with (bins - fitted parameters) degrees of freedom.
    """
    return -2.0 * poisson_log_likelihood(observed, expected, saturated=True, axis=axis)


def _residual(observed, expected):
    o, e = jnp.asarray(observed), jnp.asarray(expected)
    dt = jnp.result_type(o.dtype, e.dtype, float)
    return (o - e).astype(dt)


def gaussian_chi2(observed, expected, *, sigma=None, cov=None):
    """chi^2 = r^T C^-1 r with r = observed - expected; give ``sigma`` (diagonal) or ``cov`` (matrix).

    ``cov`` is solved through its Cholesky factor (no explicit inverse).
    """
    if (sigma is None) == (cov is None):
        raise ValueError("gaussian_chi2 needs exactly one of sigma= (per-bin errors) or cov= (covariance matrix)")
    r = _residual(observed, expected)
    if sigma is not None:
        return jnp.sum((r / jnp.asarray(sigma, r.dtype)) ** 2)
    cov = jnp.asarray(cov, r.dtype)
    if cov.shape != (r.size, r.size):
        raise ValueError(f"cov has shape {cov.shape}; it must be ({r.size}, {r.size}) for {r.size} data points")
    L = jnp.linalg.cholesky(cov)
    z = jax.scipy.linalg.solve_triangular(L, r.ravel(), lower=True)
    return jnp.sum(z**2)


def gaussian_log_likelihood(observed, expected, *, sigma=None, cov=None, normalized: bool = False):
    """Gaussian log-likelihood ``-chi^2 / 2``; ``normalized=True`` adds ``-1/2 log det(2 pi C)``
    (then equal to ``scipy.stats.multivariate_normal.logpdf``)."""
    out = -0.5 * gaussian_chi2(observed, expected, sigma=sigma, cov=cov)
    if normalized:
        r = _residual(observed, expected)
        if sigma is not None:
            s = jnp.broadcast_to(jnp.asarray(sigma, r.dtype), r.shape)
            logdet = 2.0 * jnp.sum(jnp.log(s))
        else:
            logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(jnp.linalg.cholesky(jnp.asarray(cov, r.dtype)))))
        out = out - 0.5 * (r.size * _LOG_2PI + logdet)
    return out


def gaussian_constraint(value, nominal=0.0, sigma=1.0, *, normalized: bool = False):
    """Gaussian nuisance term ``-1/2 sum((value - nominal) / sigma)^2``.

    ``normalized=True`` gives ``scipy.stats.norm(nominal, sigma).logpdf(value)`` summed.
    """
    v = jnp.asarray(value)
    v = v.astype(jnp.result_type(v.dtype, float))
    z = (v - nominal) / sigma
    out = -0.5 * z**2
    if normalized:
        out = out - jnp.log(jnp.broadcast_to(jnp.asarray(sigma, v.dtype), z.shape)) - 0.5 * _LOG_2PI
    return jnp.sum(out)


def lognormal_constraint(value, nominal=1.0, sigma=0.1, *, normalized: bool = False):
    """Log-normal nuisance term ``-1/2 sum(ln(value / nominal) / sigma)^2`` for positive ``value``.

    ``sigma`` is the width of ``ln(value)`` (a 10 % normalisation uncertainty is ``sigma ~ 0.1``;
    ``ln(1.1) = 0.0953`` if it is quoted as a factor). The default is the likelihood of the parameter
    given an auxiliary measurement at ``nominal`` (no Jacobian). ``normalized=True`` gives the density
    of ``value``, ``scipy.stats.lognorm(s=sigma, scale=nominal).logpdf(value)``, which has the extra
    ``-ln(value)`` Jacobian (use that as a prior). Non-positive values are floored (finite, very
    negative) rather than NaN.
    """
    v = _floor(value)
    lv = jnp.log(v)
    z = (lv - jnp.log(nominal)) / sigma
    out = -0.5 * z**2
    if normalized:
        out = out - lv - jnp.log(jnp.broadcast_to(jnp.asarray(sigma, v.dtype), z.shape)) - 0.5 * _LOG_2PI
    return jnp.sum(out)


def asimov(expected):
    """Asimov data set: the expected counts used as (non-integer) observed data.

    Works on arrays and pytrees; gradients are stopped so that a fit to Asimov data does not
    differentiate through the data.
    """
    return jax.tree_util.tree_map(lambda x: jax.lax.stop_gradient(jnp.asarray(x)), expected)
