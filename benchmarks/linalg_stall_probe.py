"""Does batched LAPACK ``jnp.linalg.solve`` still stall the XLA CPU thread pool under nested vmap?

cevnsjax keeps unrolled solvers (``cevnsjax/stats/_linalg.py``) because, on jax 0.10, a vmapped
``jnp.linalg.solve`` inside the sharded profiled scans and the unfolding toys left every thread idle
on a futex. This probe runs the unfolding-like problem (jacfwd of a Tikhonov solve, vmapped over
betas and toys, sharded over fake host devices) both ways in subprocesses with a time limit and
prints the ratio. "lapack: timed out" means the stall is still there; a finite ratio means the
workaround may be dropped once the full scans also finish with LAPACK.

    python benchmarks/linalg_stall_probe.py [--m 10] [--betas 100] [--toys 1000] [--timeout 120]
"""

import argparse
import os
import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import sys, time, jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    from cevnsjax.stats._linalg import cholesky_solve
    m, nb, nt, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    key = jax.random.PRNGKey(0)
    R = jax.random.normal(key, (2 * m, m))
    def est(beta, n):
        A = R.T @ (R / n[:, None]) + beta * jnp.eye(m)
        rhs = R.T @ jnp.ones_like(n)
        return jnp.linalg.solve(A, rhs) if mode == "lapack" else cholesky_solve(A, rhs)
    f = jax.jit(jax.vmap(jax.vmap(jax.jacfwd(est, argnums=1), (None, 0)), (0, None)))
    betas, ns = jnp.logspace(-3, 3, nb), 5 + jax.random.uniform(key, (nt, 2 * m))
    f(betas, ns).block_until_ready()
    t = time.perf_counter(); f(betas * 1.01, ns).block_until_ready()
    print(time.perf_counter() - t)
""")


def run(mode, a):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    try:
        out = subprocess.run([sys.executable, "-c", CODE, str(a.m), str(a.betas), str(a.toys), mode],
                             capture_output=True, text=True, timeout=a.timeout, env=env, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=10, help="unknowns per system (default 10)")
    ap.add_argument("--betas", type=int, default=100, help="regularisation strengths (default 100)")
    ap.add_argument("--toys", type=int, default=1000, help="toy spectra (default 1000)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run (default 120)")
    a = ap.parse_args()
    t_un, t_la = run("unrolled", a), run("lapack", a)
    print(f"unrolled Cholesky: {t_un if t_un is not None else 'timed out'} s")
    print(f"lapack solve:      {t_la if t_la is not None else 'timed out (stall still present)'} s")
    if t_un and t_la:
        print(f"lapack / unrolled time ratio: {t_la / t_un:.2f}")


if __name__ == "__main__":
    main()
