"""The unrolled small solvers (cevnsjax.stats._linalg) against numpy's LAPACK, with gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from cevnsjax.stats._linalg import cholesky_factor, cholesky_solve, small_solve

jax.config.update("jax_enable_x64", True)


def _spd(rng, n, batch=()):
    a = rng.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


@pytest.mark.parametrize("n", [1, 2, 5, 16, 20])
def test_small_solve_matches_lapack(n):
    rng = np.random.default_rng(n)
    A = rng.normal(size=(7, n, n)) + 0.1 * np.eye(n)  # general (non-symmetric) systems, pivoting needed
    A[:, 0, 0] = 0.0 if n > 1 else A[:, 0, 0]
    b = rng.normal(size=(7, n))
    # double precision, condition numbers <= ~1e4 here: 1e-9 relative is loose for pivoted elimination
    np.testing.assert_allclose(small_solve(jnp.asarray(A), jnp.asarray(b)), np.linalg.solve(A, b[..., None])[..., 0],
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [1, 3, 12, 41])
def test_cholesky_matches_lapack(n):
    rng = np.random.default_rng(100 + n)
    A, b = _spd(rng, n, (4,)), rng.normal(size=(4, n))
    x = cholesky_solve(jnp.asarray(A), jnp.asarray(b))
    np.testing.assert_allclose(x, np.linalg.solve(A, b[..., None])[..., 0], rtol=1e-10, atol=1e-12)
    if n <= 40:
        Lc = cholesky_factor(jnp.asarray(A[0]))
        L = np.array([[float(Lc[i][j]) if j <= i else 0.0 for j in range(n)] for i in range(n)])
        np.testing.assert_allclose(L, np.linalg.cholesky(A[0]), rtol=1e-12, atol=1e-12)
    else:
        assert cholesky_factor(jnp.asarray(A[0])) is None  # above the unrolling limit: LAPACK path


def test_gradients_and_vmap():
    rng = np.random.default_rng(7)
    A, b = jnp.asarray(_spd(rng, 4)), jnp.asarray(rng.normal(size=4))
    check_grads(lambda a, v: small_solve(a, v), (A, b), order=1, modes=("rev",), rtol=1e-6)
    check_grads(lambda a, v: cholesky_solve(a, v), (A, b), order=1, modes=("rev",), rtol=1e-6)
    As = jnp.stack([A, 2 * A, A + jnp.eye(4)])
    got = jax.vmap(small_solve, (0, None))(As, b)
    np.testing.assert_allclose(got, np.linalg.solve(np.asarray(As), np.asarray(b)[None, :, None])[..., 0], rtol=1e-10)
