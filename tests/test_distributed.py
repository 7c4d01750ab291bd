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


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """One persistent XLA compilation cache for this process and the Dask workers (they inherit the
    environment): the unfolding estimator (jacfwd through the Tikhonov solve) takes ~40 s to compile on
    two cores, otherwise again in every worker process, including the one the nanny restarts after the
    SIGKILL. A cached executable is the one a compile would give, so the bit-for-bit checks still hold."""
    import jax

    d = str(tmp_path_factory.mktemp("jax_cache"))
    env = {"JAX_COMPILATION_CACHE_DIR": d, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "1"}
    old_env = {k: os.environ.get(k) for k in env}
    old_cfg = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    os.environ.update(env)
    jax.config.update("jax_compilation_cache_dir", d)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    yield d
    for k, v in old_env.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    jax.config.update("jax_compilation_cache_dir", old_cfg[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old_cfg[1])


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
    res, n_at_kill = _run_and_kill_a_worker(
        client, out, lambda: run_scan_dask(spec, grid, client=client, out_dir=out, profile=profile, chunk_size=2,
                                           fingerprint="test", progress=False), poll_s=0.05)
    assert 1 <= n_at_kill < 12, f"the worker was killed with {n_at_kill} of 12 chunks written: not midway"
    _same(res, ref)


def test_cli_scan_with_workers_matches_in_process(data_dir, tmp_path, capsys):
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
    capsys.readouterr()
    # a ValueError from cli_scan, printed by main as one line (exit code 2)
    assert main(args + ["--out", str(tmp_path / "c"), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not both" in err and len(err.splitlines()) == 1, err


# ------------------------------------------------------------------------------------ unfolding toys
# The toy ensemble of run_unfolding in chunks (cevnsjax.stats.unfold.toy_ensemble): the same bits
# in-process, on the 2-process LocalCluster, with a worker SIGKILLed midway, and after a resume that
# recomputes one deleted chunk. A synthetic reactor (no data folder), 10 betas, 24 toys in 12 chunks.
UNF = dict(n_toys=24, n_betas=10, chunk_size=2, seed=5)


@pytest.fixture(scope="module")
def unfolding_ref():
    import cevnsjax.stats.unfold as U
    from cevnsjax.sources.reactor import ISOTOPES, Reactor, VogelEngel

    src = Reactor(U.CHOOZ_POWER_GW, U.CHOOZ_D_EFF_M, spectra={k: VogelEngel(k) for k in ISOTOPES})
    prob = U.build_problem(2, source=src)
    return prob, U.run_unfolding(problem=prob, **UNF)


def _same_unfolding(a, b):
    for f in ("nu_hat", "sigma", "band68", "band95", "toy_median", "beta_physical_toys", "flux_unfolded_range"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    for f in ("variance", "variance_toys", "bias_B", "bias_B_mean", "bias_sq", "positive_fraction"):
        assert np.array_equal(getattr(a.scan, f), getattr(b.scan, f)), f
    assert a.beta == b.beta and a.beta_physical == b.beta_physical
    assert a.beta_bias == b.beta_bias or (np.isnan(a.beta_bias) and np.isnan(b.beta_bias))


def test_unfolding_toys_chunked_resume_recomputes_only_the_missing_chunk(unfolding_ref, tmp_path):
    import cevnsjax.stats.unfold as U

    prob, ref = unfolding_ref
    assert np.ptp(ref.band95[1] - ref.band95[0]) > 0 and 0 < ref.scan.positive_fraction.max()  # real toys
    out = tmp_path / "u"
    _same_unfolding(U.run_unfolding(problem=prob, out_dir=out, **UNF), ref)  # in-process, with files
    files = sorted((out / "chunks").glob("chunk_*.npz"))
    assert len(files) == 12
    mtimes = {f.name: f.stat().st_mtime_ns for f in files}
    files[5].unlink()
    time.sleep(0.01)
    _same_unfolding(U.run_unfolding(problem=prob, out_dir=out, **UNF), ref)
    changed = [f.name for f in sorted((out / "chunks").glob("chunk_*.npz")) if f.stat().st_mtime_ns != mtimes[f.name]]
    assert changed == [files[5].name]
    # a toy does not depend on the chunking (each toy has its own key); a changed setting is refused
    toys, _, _ = U.toy_ensemble(prob, ref.scan.betas, 24, 5, chunk_size=2, out_dir=out)
    assert np.array_equal(toys, U.ensemble_toys(prob, 5, 0, 24)) and toys.shape == (24, prob.R.shape[0])
    assert np.array_equal(toys[7:9], U.ensemble_toys(prob, 5, 7, 9))
    with pytest.raises(ValueError, match="other settings"):
        U.toy_ensemble(prob, ref.scan.betas, 24, 6, chunk_size=2, out_dir=out)


def test_dask_unfolding_equals_in_process_bit_for_bit(unfolding_ref, client, tmp_path):
    from cevnsjax.stats.distributed import run_unfolding_dask

    prob, ref = unfolding_ref
    res = run_unfolding_dask(problem=prob, client=client, out_dir=tmp_path / "d", **UNF)
    assert len(list((tmp_path / "d" / "chunks").glob("chunk_*.npz"))) == 12
    _same_unfolding(res, ref)


def test_dask_unfolding_survives_a_killed_worker(unfolding_ref, client, tmp_path):
    import cevnsjax.stats.unfold as U
    from cevnsjax.stats.distributed import run_unfolding_dask

    prob, _ = unfolding_ref
    kw = dict(UNF, n_toys=48)  # 24 chunks: the kill at the first file leaves most of them to do
    ref = U.run_unfolding(problem=prob, **kw)
    out = tmp_path / "k"
    res, n_at_kill = _run_and_kill_a_worker(
        client, out, lambda: run_unfolding_dask(problem=prob, client=client, out_dir=out, **kw), poll_s=0.002)
    assert 1 <= n_at_kill < 24, f"the worker was killed with {n_at_kill} of 24 chunks written: not midway"
    assert len(list((out / "chunks").glob("chunk_*.npz"))) == 24
    _same_unfolding(res, ref)


def test_dask_unfolding_scheduler_and_workers_is_one_line_error():
    from cevnsjax.stats.distributed import cli_unfold

    with pytest.raises(ValueError, match="not both"):
        cli_unfold(2, scheduler="tcp://127.0.0.1:1", workers=2, out_dir="x")


def test_cli_unfold_with_workers_matches_in_process(data_dir, tmp_path, capsys):
    """``cevnsjax unfold 2 ... --workers 2`` (embedded LocalCluster) writes the same unfolding.npz arrays as
    the in-process command, bit for bit; a killed command resumes from its chunk files (--resume)."""
    from cevnsjax.cli import main
    from cevnsjax.stats.unfold import UnfoldingResult

    # beta 1e-8 is the first grid value: no extra compilation for an off-grid beta
    args = ["unfold", "2", "--toys", "8", "--betas", "10", "--chunk-size", "2", "--beta", "1e-8", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    a, b = (UnfoldingResult.load(tmp_path / x / "unfolding.npz") for x in "ab")
    assert len(list((tmp_path / "b" / "chunks").glob("chunk_*.npz"))) == 4
    _same_unfolding(a, b)
    (tmp_path / "b" / "chunks" / "chunk_000002.npz").unlink()
    assert main(args + ["--out", str(tmp_path / "b"), "--resume"]) == 0
    _same_unfolding(a, UnfoldingResult.load(tmp_path / "b" / "unfolding.npz"))
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "c"), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not both" in err and len(err.splitlines()) == 1, err


def _run_and_kill_a_worker(client, out, run, poll_s):
    """Run ``run()`` in a thread, SIGKILL one worker process as soon as the first chunk file appears under
    ``out/chunks``, wait for the run to finish; returns (its result, chunk files written at the kill). Checks
    that the run finished and that the killed process is gone (the nanny started another)."""
    box = {}

    def go():
        try:
            box["res"] = run()
        except BaseException as err:  # noqa: BLE001 (re-raised in the test thread)
            box["err"] = err

    def n_files():
        d = out / "chunks"
        return len(list(d.glob("chunk_*.npz"))) if d.exists() else 0

    pids = client.run(os.getpid)
    th = threading.Thread(target=go)
    th.start()
    deadline = time.time() + 300
    while n_files() == 0 and time.time() < deadline and th.is_alive():
        time.sleep(poll_s)
    n_at_kill = n_files()
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    th.join(600)
    assert not th.is_alive(), "the Dask run did not finish after a worker was killed"
    if "err" in box:
        raise box["err"]
    assert victim not in client.run(os.getpid).values()
    return box["res"], n_at_kill
