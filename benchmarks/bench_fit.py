"""Benchmark: fits and profiles on the Dresden-II preset with the one optimiser core.

The model is ``cevnsjax.analyses.dresden_ii.build_model()`` (q and the 7 background parameters free,
k = 0.157). Measured in one run:

* the first ``JointModel.fit`` (trace + compile + solve);
* fits with NEW sets of fixed parameters after that (the fixed set is data: no new trace);
* a 25-point profile of q (``JointModel.profile``, warm-started in order, same compiled solver);
* baseline, same run: the same fit through a fresh objective function each time, i.e. a new trace and
  compile per fixed set, which is what ``cevnsjax.fit.minimize`` (and hence models/_common.Fitter's
  scipy detour) paid before the fixed set became data.

    python benchmarks/bench_fit.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import cevnsjax as cj


def main(repeat: int = 5):
    cj.enable_x64()
    from cevnsjax.analyses.dresden_ii import BKG, build_model
    from cevnsjax.stats.fit import minimize

    model = build_model()
    obs = model.observed()
    t = time.perf_counter()
    best = model.fit(obs=obs)
    t_first = time.perf_counter() - t
    print(f"first fit (trace + compile + solve): {t_first:.2f} s; -2lnL = {best.minus2lnL:.4f}, "
          f"converged={best.converged}, {best.n_iter} iterations")
    fixed_sets = [["q"], {"q": 0.0}, [BKG + "a_M"], {BKG + "C": 4.0}, ["q", BKG + "w_L1"], {"q": -2e-4}]
    times = []
    for _ in range(repeat):
        for fx in fixed_sets:
            t = time.perf_counter()
            res = model.fit(obs=obs, fixed=fx)
            times.append(time.perf_counter() - t)
    print(f"fit with a new fixed set (median of {len(times)}): {1e3 * statistics.median(times):.1f} ms "
          f"(max {1e3 * max(times):.1f} ms); last -2lnL = {res.minus2lnL:.4f}")
    qs = np.linspace(-4e-4, 2e-4, 25)
    model.profile("q", qs[:2], obs=obs, best=best)  # any first-call overheads outside the timing
    tp = []
    for _ in range(max(repeat // 2, 1)):
        t = time.perf_counter()
        prof = model.profile("q", qs, obs=obs, best=best)
        tp.append(time.perf_counter() - t)
    print(f"25-point profile of q: {statistics.median(tp):.3f} s; Delta chi^2(q=0) = "
          f"{np.interp(0.0, qs, prof.delta_chi2):.3f}, all converged: {bool(prof.converged.all())}")
    # baseline: a new trace + compile for every fixed set (fresh objective function each time)
    start, bounds = model.init_values(), model.bounds()
    tb = []
    for fx in fixed_sets[:3]:
        obj = lambda p, o: model.minus2lnL(p, o)  # noqa: E731 - a new function object: a new compile
        t = time.perf_counter()
        minimize(obj, start, obs, bounds=bounds, fixed=fx)
        tb.append(time.perf_counter() - t)
    print(f"baseline, recompiling per fixed set (median of {len(tb)}): {statistics.median(tb):.2f} s "
          f"-> speed-up {statistics.median(tb) / statistics.median(times):.0f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    main(ap.parse_args().repeat)
