"""One short GPU check of the scan engine: Dresden-II (m_Z', g_Z') throughput in float32 and float64
on the accelerator, their agreement, and the CPU figure beside it (same script, same objective).

    CEVNSJAX_DATA=/path/to/data python benchmarks/gpu_check.py [--n 256] [--profiled-n 96]

Prints one line per measurement and a final JSON summary. Runs in ~2-4 minutes on an H100.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from bench_scan import BEST_BKG, dresden_objective, plane  # noqa: E402

import cevnsjax as cj  # noqa: E402
from cevnsjax.stats.scan import run_scan  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--profiled-n", type=int, default=128)
    ap.add_argument("--cpu-n", type=int, default=64)
    args = ap.parse_args()
    cj.enable_x64()
    out = {"backend": jax.default_backend(), "device": str(jax.devices()[0])}
    print(out, flush=True)
    fixed = {f"bkg.dresden_ii.{k}": v for k, v in BEST_BKG.items()}
    res = {}
    for dt in (np.float64, np.float32):
        chi2, prof, _ = dresden_objective(dt)
        t0 = time.perf_counter()
        r = run_scan(chi2, plane(args.n), fixed=fixed, chunk_size=65536, dtype=dt, progress=False)
        out[f"unprofiled_{np.dtype(dt).name}_points_per_s"] = r.attrs["points_per_second"]
        print(f"unprofiled {args.n}^2 {np.dtype(dt).name}: {r.attrs['points_per_second']:,.0f} points/s "
              f"(wall {time.perf_counter() - t0:.1f} s)", flush=True)
        t0 = time.perf_counter()
        rp = run_scan(chi2, plane(args.profiled_n), profile=prof, chunk_size=16384, dtype=dt, progress=False)
        out[f"profiled_{np.dtype(dt).name}_points_per_s"] = rp.attrs["points_per_second"]
        print(f"profiled {args.profiled_n}^2 {np.dtype(dt).name}: {rp.attrs['points_per_second']:,.0f} points/s, "
              f"converged where dchi2<1e3: {rp.converged[rp.delta_chi2 < 1e3].mean():.4f} "
              f"(wall {time.perf_counter() - t0:.1f} s)", flush=True)
        res[np.dtype(dt).name] = (r, rp)
    for k, i in (("unprofiled", 0), ("profiled", 1)):
        a, b = res["float64"][i].delta_chi2, res["float32"][i].delta_chi2
        m = a < 50  # where contours live
        out[f"{k}_max_abs_dchi2_diff_f32_vs_f64_where_dchi2<50"] = float(np.max(np.abs(a - b)[m])) if m.any() else None
        print(f"{k}: max |dchi2(f32) - dchi2(f64)| where dchi2 < 50: {out[f'{k}_max_abs_dchi2_diff_f32_vs_f64_where_dchi2<50']}",
              flush=True)
    cpu = jax.devices("cpu")
    chi2, prof, _ = dresden_objective(np.float64)
    with jax.default_device(cpu[0]):
        r = run_scan(chi2, plane(args.cpu_n), fixed=fixed, chunk_size=4096, devices=cpu, progress=False)
    out["cpu_unprofiled_float64_points_per_s"] = r.attrs["points_per_second"]
    print(f"CPU ({len(cpu)} device(s)) unprofiled {args.cpu_n}^2 float64: {r.attrs['points_per_second']:,.0f} points/s",
          flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
