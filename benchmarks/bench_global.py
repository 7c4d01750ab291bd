"""Global NUTS posterior of Dresden-II + CsI 2017 + CsI 2021 + LAr (models/global_fit.py): wall time,
max r_hat, divergences and bulk ESS per second, for the issue-14 target (converged, r_hat < 1.01, no
divergences, <= 10 min on the 2-core machine, >= 15 parameters).

    python benchmarks/bench_global.py [--physics sin2,rn] [--num-samples 500 --num-warmup 500 --num-chains 2]

Runs the script (MLE start, 1-D profiles of sin^2 theta_W and the CsI radius, then NUTS with a dense
mass matrix) and prints one table row; the figures are read from its summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--physics", default="sin2,rn")
    p.add_argument("--datasets", default="dresden_ii,coherent_csi_2017,coherent_csi_2021,coherent_lar_2020")
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--num-warmup", type=int, default=500)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--out", default=None)
    p.add_argument("--chain-method", default="parallel", choices=("parallel", "sequential"),
                   help="parallel (default): one chain per CPU device (XLA host devices = chains)")
    a = p.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="bench_global_"))
    cmd = [sys.executable, str(ROOT / "models" / "global_fit.py"), "--physics", a.physics, "--datasets", a.datasets,
           "--num-samples", str(a.num_samples), "--num-warmup", str(a.num_warmup), "--num-chains",
           str(a.num_chains), "--out", str(out), "--no-plots", "--chain-method", a.chain_method]
    env = dict(os.environ)
    if a.chain_method == "parallel":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={a.num_chains}".strip()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - t0
    s = json.loads((out / "summary.json").read_text())
    n = s["nuts"]
    row = {"chain_method": a.chain_method, "load_average_1min": os.getloadavg()[0],
           "parameters": s["n_parameters"], "physics": s["physics"], "wall_s": wall,
           "nuts_s": n["sampling_time_s"], "r_hat_max": n["r_hat_max"], "divergences": n["divergences"],
           "ess_bulk_min": n["ess_bulk_min"], "ess_bulk_min_per_s": n["ess_bulk_min_per_s"],
           "converged": n["converged"], "within_10_min": wall <= 600}
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
