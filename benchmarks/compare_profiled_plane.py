"""The profiled Dresden-II (m_Z', g_Z') plane with the 7 background nuisances, timed with whichever cevnsjax is
importable, so two versions can be compared back to back on one machine:

    PYTHONPATH=.          python benchmarks/compare_profiled_plane.py 128
    git worktree add /tmp/old <commit>
    PYTHONPATH=/tmp/old   python benchmarks/compare_profiled_plane.py 128

The black-box chi^2 with the exact Hessian (chunk 4096, 4 fake CPU devices; ``bench_scan.py --profiled-only``
times it against the fast path: signal precomputed per point + Gauss-Newton). Works with the
pre-layout package (``cevnsjax.scan``, ``cevnsjax.parameters``, ``cevnsjax.spec``) and the current one.
Needs the published data folder ($CEVNSJAX_DATA).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import sys
import time

import jax.numpy as jnp

import cevnsjax as cj
from cevnsjax.experiment import predict

try:  # the current layout
    from cevnsjax import experiment as parameters
    from cevnsjax.io.spec import load_preset
    from cevnsjax.stats.scan import Grid, run_scan

    parameters.apply  # noqa: B018 (present since the layout move)
except (ImportError, AttributeError):  # the pre-layout package
    from cevnsjax.scan import Grid, run_scan
    from cevnsjax.spec import load_preset

    from cevnsjax import parameters

BKG = {"A": (20.0, 0.0, 1e3), "B": (150.0, 0.0, 1e4), "C": (4.0, 0.1, 50.0), "h_L1": (100.0, 0.0, 1e4),
       "c_L1": (1.297, 1.2, 1.4), "w_L1": (0.1, 0.03, 0.3), "a_M": (1.0, 0.8, 1.2)}


def main(n: int) -> None:
    cj.enable_x64()
    ex = load_preset("dresden_ii")
    prep, th0 = ex.prepare(), ex.defaults
    y, err = jnp.asarray(ex.observed.values), jnp.asarray(ex.observed.errors)
    comp = prep.kernels.component_names

    def chi2(v):
        th = parameters.apply(th0, v, comp)
        return jnp.sum(((y - predict(th, prep).total) / err) ** 2) + ((v["bkg.dresden_ii.a_M"] - 1.0) / 0.03) ** 2

    prof = {f"bkg.dresden_ii.{k}": v for k, v in BKG.items()}
    grid = Grid([f"m_zprime_MeV=log:1:1e4:{n}", f"g_zprime=log:1e-7:1e-3:{n}"])
    t0 = time.perf_counter()
    r = run_scan(chi2, grid, profile=prof, chunk_size=4096, progress=False)
    wall = time.perf_counter() - t0
    ok = r.converged[r.delta_chi2 < 1e3].mean()
    print(f"{cj.__file__}: {n} x {n} profiled: wall {wall:.1f} s, setup {r.attrs.get('setup_seconds', float('nan')):.1f} s, "
          f"{r.attrs.get('points_per_second', float('nan')):,.0f} points/s, converged where Delta chi2 < 1e3: {ok:.4f}, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
