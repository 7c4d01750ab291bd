"""Small dense linear solves in pure element-wise XLA (no LAPACK custom calls).

Batched ``jnp.linalg.solve`` (a LAPACK custom call on CPU) stalled the XLA CPU thread pool when
vmapped over thousands of small systems inside sharded or nested-vmap programs (jax 0.10; observed
in the profiled scans and the unfolding toys: all threads idle on a futex). These unrolled solvers
compile to ordinary fused arithmetic and batch freely.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["small_solve"]

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
