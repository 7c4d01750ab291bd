"""Small dense linear solves in pure element-wise XLA (no LAPACK custom calls).

Batched ``jnp.linalg.solve`` (a LAPACK custom call on CPU) was blamed for stalls of the XLA CPU
thread pool when vmapped over thousands of small systems inside sharded programs (jax 0.10; profiled
scans and unfolding toys: all threads idle on a futex). On 2026-12-05 a stall of that kind was traced
to another cause: the all-reduce that a sharded vmap of a while loop performs across host-CPU devices
at every iteration (XLA aborted after 40 s waiting at the rendezvous); :mod:`cevnsjax.stats.scan` now
runs one loop per device with ``shard_map``. A LAPACK stall could not be reproduced
(``benchmarks/linalg_stall_probe.py``); these unrolled solvers stay because they are as fast for
n <= 16 (2.4 ms for 4096 7x7 systems either way) and compile to ordinary fused arithmetic.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["small_solve", "cholesky_factor", "cholesky_solve"]

MAX_UNROLLED = 16


def small_solve(A, b):
    """Solve A x = b (A: (..., n, n), b: (..., n)) by Gauss-Jordan elimination with partial pivoting,
    unrolled for n <= 16 (``jnp.linalg.solve`` above). A singular A gives non-finite entries."""
    n = A.shape[-1]
    if n > MAX_UNROLLED:
        return jnp.linalg.solve(A, b[..., None])[..., 0]
    M = jnp.concatenate([A, b[..., None]], axis=-1)  # (..., n, n + 1)
    rows = jnp.arange(n)
    for k in range(n):
        col = jnp.where(rows >= k, jnp.abs(M[..., :, k]), -1.0)
        p = jnp.argmax(col, axis=-1)[..., None]  # (..., 1)
        perm = jnp.where(rows == k, p, jnp.where(rows == p, k, rows))  # swap rows k and p
        M = jnp.take_along_axis(M, perm[..., None], axis=-2)
        rowk = M[..., k, :] / M[..., k, k][..., None]  # (..., n + 1)
        factor = jnp.where(rows == k, 0.0, M[..., :, k])  # (..., n)
        M = M - factor[..., None] * rowk[..., None, :]
        M = jnp.where((rows == k)[:, None], rowk[..., None, :], M)
    return M[..., :, n]


def cholesky_factor(A, max_unrolled: int = 40):
    """Unrolled Cholesky factor (list of lists of batched scalars) of a small SPD matrix A, or None
    above ``max_unrolled`` unknowns (the unrolled graph grows as m^3)."""
    m = A.shape[-1]
    if m > max_unrolled:
        return None
    Lc = [[None] * m for _ in range(m)]
    for j in range(m):
        d = A[..., j, j] - sum((Lc[j][k] ** 2 for k in range(j)), jnp.zeros_like(A[..., j, j]))
        Lc[j][j] = jnp.sqrt(jnp.maximum(d, jnp.finfo(A.dtype).tiny))
        for i in range(j + 1, m):
            acc = sum((Lc[i][k] * Lc[j][k] for k in range(j)), jnp.zeros_like(A[..., i, j]))
            Lc[i][j] = (A[..., i, j] - acc) / Lc[j][j]
    return Lc


def cholesky_solve(A, rhs, Lc=None):
    """Solve A x = rhs for a small SPD A (with its factor from :func:`cholesky_factor` when given)."""
    Lc = cholesky_factor(A) if Lc is None else Lc
    if Lc is None:
        return jnp.linalg.solve(A, rhs[..., None])[..., 0]
    m = len(Lc)
    y = []
    for i in range(m):
        y.append((rhs[..., i] - sum((Lc[i][k] * y[k] for k in range(i)), jnp.zeros_like(rhs[..., i]))) / Lc[i][i])
    x = [None] * m
    for i in reversed(range(m)):
        x[i] = (y[i] - sum((Lc[k][i] * x[k] for k in range(i + 1, m)), jnp.zeros_like(y[i]))) / Lc[i][i]
    return jnp.stack(x, -1)
