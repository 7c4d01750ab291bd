"""Scan throughput: in-process run_scan against run_scan_dask on a LocalCluster of N worker processes,
same grid, same chunks, in one run (issue 14). Also checks that both give the same bits.

    python benchmarks/bench_distributed.py [--n 24] [--chunk-size 48] [--workers 2] [--toys 400] [--toy-chunk 50]

Objective: ``cevnsjax scan dresden_ii`` (modified grid smearing preset, Gaussian chi^2) over
(m_Z', g_Z') with the 7 Dresden-II background parameters profiled (Newton, warm-started). Figures:
wall time of the chunk phase (the in-process one includes its single compilation; each Dask task
traces and compiles once on its worker), points per second, and their ratio.

Unfolding toys (second row, ``--toys 0`` skips it): the toy ensemble of ``run_unfolding`` (synthetic
Vogel-Engel reactor, scenario 2, 100 betas) in chunks of ``--toy-chunk``, in-process against
``run_unfolding_dask`` on the same cluster. Each side runs twice into fresh folders: the first run
includes the compilation (in every worker process for Dask), the second is the throughput.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24, help="points per axis")
    p.add_argument("--chunk-size", type=int, default=48)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tasks-per-worker", type=int, default=2)
    p.add_argument("--toys", type=int, default=400, help="unfolding toys (0: no toy row)")
    p.add_argument("--toy-chunk", type=int, default=50, help="toys per chunk")
    p.add_argument("--skip-scan", action="store_true", help="only the toy row")
    a = p.parse_args()

    import jax
    import numpy as np

    import cevnsjax as cj
    from cevnsjax.io.spec import fit_priors, load_spec
    from cevnsjax.stats.distributed import ObjectiveSpec, dask_client, run_scan_dask, spec_objective
    from cevnsjax.stats.model import Analysis, JointModel
    from cevnsjax.stats.scan import Grid, parse_axis, run_scan

    cj.enable_x64()
    priors = fit_priors(load_spec("dresden_ii"))
    nuis = [n for n in priors if n.startswith("bkg.")]
    spec = ObjectiveSpec(spec_objective, {"spec": "dresden_ii", "priors": priors, "profile_names": nuis})
    m = JointModel([Analysis(cj.load_preset("dresden_ii"), {n: priors[n] for n in nuis})])
    start, bounds = m.init_values(), m.bounds()
    profile = {n: (start[n], *bounds[n]) for n in nuis}
    grid = Grid([parse_axis(f"m_zprime_MeV=log:1:1e4:{a.n}"), parse_axis(f"g_zprime=log:1e-6:1e-4:{a.n}")])
    tmp = Path(tempfile.mkdtemp(prefix="bench_dist_"))
    kw = dict(profile=profile, chunk_size=a.chunk_size, fingerprint="bench")

    if a.skip_scan:
        return bench_toys(a, tmp)
    t = time.perf_counter()
    r0 = run_scan(spec.build(), grid, out_dir=tmp / "local", progress=False, devices=jax.local_devices()[:1], **kw)
    wall0 = time.perf_counter() - t
    with dask_client(workers=a.workers) as client:
        client.run(lambda: None)
        t = time.perf_counter()
        r1 = run_scan_dask(spec, grid, client=client, out_dir=tmp / "dask", progress=False,
                           tasks_per_worker=a.tasks_per_worker, **kw)
        wall1 = time.perf_counter() - t
    same = bool(np.array_equal(r0.chi2, r1.chi2) and all(np.array_equal(r0.nuisances[n], r1.nuisances[n]) for n in nuis))
    row = {"points": grid.size, "chunk": r0.attrs["chunk"], "workers": a.workers, "tasks": r1.attrs["n_tasks"],
           "in_process_wall_s": wall0, "in_process_points_per_s_after_compile": r0.attrs["points_per_second"],
           "dask_wall_s": wall1, "dask_points_per_s": r1.attrs["points_per_second"],
           "throughput_ratio_dask_over_in_process": wall0 / wall1, "bit_identical": same,
           "cores": __import__("os").cpu_count()}
    print(json.dumps(row, indent=1))
    if a.toys:
        bench_toys(a, tmp)


def bench_toys(a, tmp: Path):
    import numpy as np

    import cevnsjax.stats.unfold as U
    from cevnsjax.sources.reactor import ISOTOPES, Reactor, VogelEngel
    from cevnsjax.stats.distributed import dask_client, run_unfolding_dask

    src = Reactor(U.CHOOZ_POWER_GW, U.CHOOZ_D_EFF_M, spectra={k: VogelEngel(k) for k in ISOTOPES})
    prob = U.build_problem(2, source=src)
    kw = dict(problem=prob, n_toys=a.toys, chunk_size=a.toy_chunk, beta=1e-8)  # a grid beta: no extra compile
    walls = {}
    for i in (1, 2):
        t = time.perf_counter()
        r0 = U.run_unfolding(out_dir=tmp / f"toys_local{i}", **kw)
        walls[f"in_process_run{i}_s"] = time.perf_counter() - t
    with dask_client(workers=a.workers) as client:
        client.run(lambda: None)
        for i in (1, 2):
            t = time.perf_counter()
            r1 = run_unfolding_dask(client=client, out_dir=tmp / f"toys_dask{i}", **kw)
            walls[f"dask_run{i}_s"] = time.perf_counter() - t
    same = bool(all(np.array_equal(getattr(r0, f), getattr(r1, f)) for f in ("nu_hat", "band68", "band95"))
                and np.array_equal(r0.scan.bias_B_mean, r1.scan.bias_B_mean))
    row = {"toys": a.toys, "toy_chunk": a.toy_chunk, "betas": 100, "workers": a.workers, **walls,
           "in_process_toys_per_s_after_compile": a.toys / walls["in_process_run2_s"],
           "dask_toys_per_s_after_compile": a.toys / walls["dask_run2_s"],
           "throughput_ratio_dask_over_in_process": walls["in_process_run2_s"] / walls["dask_run2_s"],
           "bit_identical": same, "cores": __import__("os").cpu_count()}
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
