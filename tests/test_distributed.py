"""Scans on Dask (cevnsjax.stats.distributed) against the in-process scan, on a 2-process LocalCluster.

* The Dask scan equals the in-process ``run_scan`` (same chunk size, one device) BIT FOR BIT: every chunk
  is the same jitted computation of the same points from the same saved warm-start table, only run in
  another process; nothing is summed across chunks.
* Killing one worker process (SIGKILL) after the first chunk file appears still completes, with the
  same bits: Dask reruns the lost task elsewhere and the rerun skips the chunks already written.
* The objective is rebuilt on the workers from a picklable recipe (preset name + parameter names).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

NUIS = ["bkg.dresden_ii.a_M", "bkg.dresden_ii.A"]


@pytest.fixture(scope="module")
def setup_scan(data_dir):
    import jax

    from cevnsjax.io.spec import experiment_from_spec, fit_priors, load_spec
    from cevnsjax.stats.distributed import ObjectiveSpec, spec_objective
    from cevnsjax.stats.model import Analysis, JointModel
    from cevnsjax.stats.scan import Grid, parse_axis, run_scan

    priors = fit_priors(load_spec("dresden_ii"))
    spec = ObjectiveSpec(spec_objective, {"spec": "dresden_ii", "priors": priors, "profile_names": NUIS})
    m = JointModel([Analysis(experiment_from_spec(load_spec("dresden_ii")), {n: priors[n] for n in NUIS})])
    start, bounds = m.init_values(), m.bounds()
    profile = {n: (start[n], *bounds[n]) for n in NUIS}
    grid = Grid([parse_axis("signal_scale=lin:0.2:2.0:24")])
    ref = run_scan(spec.build(), grid, profile=profile, chunk_size=2, progress=False,
                   devices=jax.local_devices()[:1], fingerprint="test")
    return spec, grid, profile, ref


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            Client(cl) as c:
        yield c


def _same(a, b):
    assert np.array_equal(a.chi2, b.chi2), np.max(np.abs(a.chi2 - b.chi2))
    assert set(a.nuisances) == set(b.nuisances) == set(NUIS)
    for n in NUIS:
        assert np.array_equal(a.nuisances[n], b.nuisances[n]), n
    assert np.array_equal(a.newton_decrement, b.newton_decrement)


def test_dask_scan_equals_in_process_bit_for_bit(setup_scan, client, tmp_path):
    from cevnsjax.stats.distributed import run_scan_dask

    spec, grid, profile, ref = setup_scan
    res = run_scan_dask(spec, grid, client=client, out_dir=tmp_path / "s", profile=profile, chunk_size=2,
                        fingerprint="test", progress=False)
    assert res.attrs["n_workers"] == 2 and res.attrs["n_tasks"] == 8
    assert len(list((tmp_path / "s" / "chunks").glob("chunk_*.npz"))) == 12
    assert np.isfinite(ref.chi2).all() and np.ptp(ref.chi2) > 1.0  # a real scan, not a constant
    _same(res, ref)


def test_dask_scan_survives_a_killed_worker(setup_scan, client, tmp_path):
    from cevnsjax.stats.distributed import run_scan_dask

    spec, grid, profile, ref = setup_scan
    out = tmp_path / "k"
    box = {}

    def go():
        try:
            box["res"] = run_scan_dask(spec, grid, client=client, out_dir=out, profile=profile, chunk_size=2,
                                       fingerprint="test", progress=False)
        except BaseException as err:  # noqa: BLE001 (re-raised in the test thread)
            box["err"] = err

    pids = client.run(os.getpid)
    th = threading.Thread(target=go)
    th.start()
    def n_files():
        d = out / "chunks"
        return len(list(d.glob("chunk_*.npz"))) if d.exists() else 0

    deadline = time.time() + 300
    while n_files() == 0 and time.time() < deadline and th.is_alive():
        time.sleep(0.05)
    n_at_kill = n_files()
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    th.join(600)
    assert not th.is_alive(), "the Dask scan did not finish after a worker was killed"
    if "err" in box:
        raise box["err"]
    assert 1 <= n_at_kill < 12, f"the worker was killed with {n_at_kill} of 12 chunks written: not midway"
    assert victim not in client.run(os.getpid).values()  # that process is gone (the nanny started another)
    _same(box["res"], ref)


def test_cli_scan_with_workers_matches_in_process(data_dir, tmp_path):
    """``cevnsjax scan ... --workers 2`` (embedded LocalCluster) gives the in-process CLI scan's Delta chi^2
    (the in-process CLI shards over this test's 4 fake devices, so agreement is to rounding, not bits)."""
    from cevnsjax.cli import main
    from cevnsjax.stats.scan import load_scan

    args = ["scan", "dresden_ii", "--param", "signal_scale=lin:0.5:1.5:4", "--profile", "bkg.dresden_ii.a_M",
            "--chunk-size", "2", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    a, b = (load_scan(tmp_path / x / "scan.nc") for x in "ab")
    assert np.ptp(a.chi2) > 1.0
    np.testing.assert_allclose(b.chi2, a.chi2, rtol=1e-10)
    with pytest.raises(SystemExit, match="not both"):
        main(args + ["--out", str(tmp_path / "c"), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
