"""Benchmark: Dresden-II (m_Z', g_Z') scans with :func:`cevnsjax.stats.scan.run_scan`.

Measured in one run: unprofiled points per second against grid size (chunk 4096, fixed memory: the
peak RSS is printed after each size), scaling over 1, 2 and 4 (fake) CPU devices, the profiled plane
(7 background nuisances, projected Newton) and, as the baseline, a per-point loop in the style of the
peer codes (scipy.integrate.quad over E_nu at each recoil node, Gaussian smearing, chi^2), timed on a
few points. ``--plane N`` sets the profiled plane (default 500 x 500; ``--quick`` uses 48 x 48);
``--profiled-only`` times only that plane, the previous method (exact Hessian of the black-box chi^2)
against the fast path (signal precomputed per point, Gauss-Newton) in one run.

    python benchmarks/bench_scan.py [--quick] [--plane 500] [--profiled-only]

Needs the published data folder ($CEVNSJAX_DATA, default ../shared/data).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import cevnsjax as cj
from cevnsjax import experiment as parameters
from cevnsjax.experiment import predict
from cevnsjax.io.spec import load_preset
from cevnsjax.stats.scan import Grid, run_scan

BKG = {"A": (20.0, 0.0, 1e3), "B": (150.0, 0.0, 1e4), "C": (4.0, 0.1, 50.0), "h_L1": (100.0, 0.0, 1e4),
       "c_L1": (1.297, 1.2, 1.4), "w_L1": (0.1, 0.03, 0.3), "a_M": (1.0, 0.8, 1.2)}
BEST_BKG = {"A": 13.9, "B": 140.8, "C": 3.91, "h_L1": 84.6, "c_L1": 1.2923, "w_L1": 0.0695, "a_M": 1.0}


def dresden_objective(dtype=np.float64):
    """(chi2, profile) for Dresden-II: Gaussian chi^2 on the Rx-ON rates + the a_M prior."""
    ex = load_preset("dresden_ii")
    prep = ex.prepare()
    th0 = ex.defaults
    if dtype == np.float32:
        cast = lambda x: jnp.asarray(x, np.float32) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x
        prep, th0 = jax.tree_util.tree_map(cast, prep), jax.tree_util.tree_map(cast, th0)
    y, err = jnp.asarray(ex.observed.values, dtype), jnp.asarray(ex.observed.errors, dtype)
    comp = prep.kernels.component_names

    def chi2(v):
        th = parameters.apply(th0, v, comp)
        return jnp.sum(((y - predict(th, prep).total) / err) ** 2) + ((v["bkg.dresden_ii.a_M"] - 1.0) / 0.03) ** 2

    return chi2, {f"bkg.dresden_ii.{k}": v for k, v in BKG.items()}, ex


def dresden_split_objective():
    """(objective, profile) for the fast profiled plane: the ScanObjective of a JointModel on the
    Dresden-II preset with the a_M constraint N(1, 0.03) (the chi^2 of :func:`dresden_objective`):
    residuals with Gauss-Newton, the signal computed once per grid point since only background
    parameters are profiled (what ``JointModel.scan`` and ``cevnsjax scan`` run)."""
    model = cj.JointModel([cj.Analysis(load_preset("dresden_ii"), {"bkg.dresden_ii.a_M": cj.Normal(1.0, 0.03)})])
    prof = {f"bkg.dresden_ii.{k}": v for k, v in BKG.items()}
    return model.scan_objective(profile=list(prof)), prof


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plane(n):
    return Grid([f"m_zprime_MeV=log:1:1e4:{n}", f"g_zprime=log:1e-7:1e-3:{n}"])


def baseline_per_point(ex, n_points=3):
    """Peer-code style: for each (m, g), quad over E_nu at each of the 200 recoil nodes, smear, chi^2."""
    from scipy.integrate import quad
    from scipy.special import erf

    from cevnsjax.sources.reactor import HuberMueller

    flux = HuberMueller("U235", 1.8, 8.0)
    M, Z, N = 72.63 * 931.494, 32.0, 40.63
    GF = 1.1663787e-11  # MeV^-2
    E_R = np.geomspace(0.02e-3, 4.5e-3, 200)  # MeV
    edges = np.linspace(0.2, 1.5, 131)
    y = np.asarray(ex.observed.values)
    err = np.asarray(ex.observed.errors)

    def point(m, g):
        QW = N - (1 - 4 * 0.23857) * Z
        rate = np.empty_like(E_R)
        for i, T in enumerate(E_R):
            q2 = 2 * M * T
            F = np.exp(-q2 * (0.9 / 197.327) ** 2 / 2)
            Q = QW + 3 * (Z + N) * g**2 / (np.sqrt(2) * GF * (q2 + m**2))
            Emin = 0.5 * (T + np.sqrt(T * T + 2 * M * T))
            rate[i] = quad(lambda E: flux(np.array([E]))[0] * (1 - M * T / (2 * E * E)) * Q**2 * F**2,
                           max(Emin, 1.8), 8.0, limit=100)[0]
        Eee = 0.2 * E_R * 1e3
        s = np.sqrt(0.0685**2 + 0.00296 * 0.11 * Eee)
        P = 0.5 * (erf((edges[None, 1:] - Eee[:, None]) / (np.sqrt(2) * s[:, None]))
                   - erf((edges[None, :-1] - Eee[:, None]) / (np.sqrt(2) * s[:, None])))
        w = np.gradient(E_R)
        mu = (rate * w) @ P
        return np.sum(((y - 1e-3 * mu) / err) ** 2)

    pts = list(zip(np.geomspace(1, 1e4, n_points), np.geomspace(1e-7, 1e-3, n_points)))
    point(*pts[0])
    t0 = time.perf_counter()
    for p in pts:
        point(*p)
    return n_points / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--plane", type=int, default=500)
    ap.add_argument("--profiled-only", action="store_true",
                    help="only the profiled plane: exact Hessian on the black-box chi2 (baseline) vs "
                         "precomputed signal + Gauss-Newton, same run")
    args = ap.parse_args()
    cj.enable_x64()
    chi2, prof, ex = dresden_objective()
    fixed = {f"bkg.dresden_ii.{k}": v for k, v in BEST_BKG.items()}
    print(f"devices: {len(jax.devices())} x {jax.devices()[0].platform}, cores: {os.cpu_count()}")
    if args.profiled_only:
        return profiled_comparison(chi2, args.plane)

    print("\n-- unprofiled Dresden-II (m_Z', g_Z') plane, background fixed, float64, chunk 4096, 4 devices")
    sizes = (32, 64) if args.quick else (32, 64, 128, 256)
    rate_unprof = None
    for n in sizes:
        r = run_scan(chi2, plane(n), fixed=fixed, chunk_size=4096, progress=False)
        rate_unprof = r.attrs["points_per_second"]
        print(f"  {n:4d} x {n:<4d} {n * n:8d} points  {rate_unprof:10,.0f} points/s  setup+compile "
              f"{r.attrs['setup_seconds']:.2f} s  peak RSS {rss_mb():.0f} MB")

    print("\n-- device scaling (unprofiled, 128 x 128, chunk 4096)")
    base = None
    for k in (1, 2, 4):
        r = run_scan(chi2, plane(64 if args.quick else 128), fixed=fixed, chunk_size=4096, devices=jax.devices()[:k],
                     progress=False)
        base = base or r.attrs["points_per_second"]
        print(f"  {k} device(s): {r.attrs['points_per_second']:10,.0f} points/s  ({r.attrs['points_per_second'] / base:.2f}x)")

    print("\n-- baseline: per-point scipy quad loop (peer-code style), 3 points")
    b = baseline_per_point(ex)
    print(f"  {b:.3f} points/s  -> unprofiled scan is {rate_unprof / b:,.0f}x faster")

    n = 48 if args.quick else args.plane
    print(f"\n-- profiled plane {n} x {n}: 7 background nuisances; signal precomputed per point, Gauss-Newton "
          "20 it. stopped at 1e-7 (coarse 12x12, 40 it.)")
    fast, prof = dresden_split_objective()
    t0 = time.perf_counter()
    r = run_scan(fast, plane(n), profile=prof, chunk_size=4096, progress=True)
    wall = time.perf_counter() - t0
    print(f"  wall {wall:.1f} s (setup+coarse+compile {r.attrs['setup_seconds']:.1f} s), "
          f"{r.attrs['points_per_second']:,.0f} points/s, peak RSS {rss_mb():.0f} MB")
    print(f"  converged (decrement < 1e-4) {r.converged.mean():.4f}; where Delta chi2 < 1e3: "
          f"{r.converged[r.delta_chi2 < 1e3].mean():.4f}; best fit {r.best_fit()}")
    print(f"  per-point baseline would need {n * n / b / 3600:,.0f} h unprofiled; ratio {r.attrs['points_per_second'] / b:,.0f}x "
          "(profiled scan vs unprofiled baseline)")


def profiled_comparison(chi2, n):
    """The profiled plane in one run: the black-box chi^2 with the exact Hessian and 10 iterations
    (the previous method: baseline) vs :func:`dresden_split_objective` (signal precomputed per point,
    Gauss-Newton with run_scan's defaults for it: 20 iterations stopped at 1e-7); both
    through the same engine (batches per device, shard_map)."""
    fast, prof = dresden_split_objective()
    out = {}
    for label, obj in (("exact Hessian, black-box chi2, 10 it. (baseline)", chi2),
                       ("precomputed signal + Gauss-Newton, 20 it. stopped at 1e-7", fast)):
        t0 = time.perf_counter()
        r = run_scan(obj, plane(n), profile=prof, chunk_size=4096, progress=False)
        wall = time.perf_counter() - t0
        ok = r.converged[r.delta_chi2 < 1e3].mean()
        print(f"  {n} x {n} profiled, {label}: wall {wall:.1f} s (setup {r.attrs['setup_seconds']:.1f} s), "
              f"{r.attrs['points_per_second']:,.0f} points/s, converged where Delta chi2 < 1e3: {ok:.4f}", flush=True)
        out[label] = (r, wall)
    (a, wa), (b, wb) = out.values()
    both = (a.delta_chi2 < 30) & np.isfinite(b.delta_chi2)
    print(f"  ratio (wall) {wa / wb:.1f}x; max |Delta chi2 difference| where Delta chi2 < 30: "
          f"{np.max(np.abs(a.delta_chi2 - b.delta_chi2)[both]):.2e}; fast path lower than the baseline by up to "
          f"{np.max((a.chi2 - b.chi2)[both]):.2e} there (the baseline's 10 exact steps stop short at some points)")


if __name__ == "__main__":
    main()
