"""Benchmark: Tikhonov unfolding with a 100-value beta scan and 1000 toys for each scenario (2302.10460).

Reports, per scenario: problem build (kernels, host), compile (first call) and run (second call) of
the vmapped scan (100 beta x 1000 toys: nu_hat, C by jax.jacfwd, W, B), and the whole run_unfolding.
Target: under 10 s per scenario on a 2-core machine. Run ``python benchmarks/bench_unfold.py``.
"""

from __future__ import annotations

import time

import numpy as np

import cevnsjax as cj
from cevnsjax.io.location import data_dir
from cevnsjax.stats import unfold as U


def main():
    cj.enable_x64()
    dd = data_dir(required=True)
    betas = np.geomspace(*U.DEFAULT_BETA_RANGE, 100)
    for s in (1, 2, 3):
        t0 = time.perf_counter()
        p = U.build_problem(s, data_dir=dd)
        t1 = time.perf_counter()
        toys = U.toy_data(p, 1000, 1)
        t2 = time.perf_counter()
        U.beta_scan(p, betas, toys)
        t3 = time.perf_counter()
        U.beta_scan(p, betas, toys + 0.0)
        t4 = time.perf_counter()
        r = U.run_unfolding(s, problem=p, n_toys=1000, n_betas=100)
        t5 = time.perf_counter()
        print(f"scenario {s}: build {t1 - t0:.2f} s, toys {t2 - t1:.3f} s, scan first call (compile+run) {t3 - t2:.2f} s, "
              f"scan run {t4 - t3:.2f} s, run_unfolding {t5 - t4:.2f} s; beta_phys {r.beta_physical:.3g}, "
              f"upper95/true {r.summary()['upper95_over_true']:.3f}")


if __name__ == "__main__":
    main()
