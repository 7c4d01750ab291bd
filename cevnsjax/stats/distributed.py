"""Scans on a Dask cluster (dask.distributed): every group of chunks of a :func:`run_scan` is one Dask task.

    from cevnsjax.stats.distributed import ObjectiveSpec, dask_client, run_scan_dask
    spec = ObjectiveSpec(spec_objective, {"spec": "dresden_ii", "priors": {...}, "profile_names": [...]})
    with dask_client(workers=2) as client:            # or dask_client(scheduler="tcp://host:8786")
        res = run_scan_dask(spec, grid, client=client, out_dir="scan_zp", profile=profile)

How (the chunk files and the manifest are the source of truth, as for :func:`run_scan`):

1. the client writes ``manifest.json`` and the coarse warm-start table (``coarse.npz``) into ``out_dir``
   (``run_scan(..., chunks=[], assemble=False)``);
2. the missing chunks are split into contiguous groups, one Dask task each (default: 4 tasks per
   worker, so a lost task is cheap to redo). A task runs on a worker process, rebuilds the objective
   from the picklable :class:`ObjectiveSpec` (cached per process, never a jitted closure shipped over
   the wire), and calls ``run_scan(..., chunks=group, assemble=False)``: it computes the group's
   chunks that have no file yet and writes each one atomically;
3. the client assembles the result from the files (``run_scan`` again: every chunk is there).

A worker lost midway: Dask reruns its task on another worker; the rerun skips the chunks already
written. Every chunk is a pure function of its points and of the saved warm-start table, so the
result is bit for bit that of the in-process scan with the same ``chunk_size`` on one device (each
worker process uses ONE local device; use one worker per GPU). The out_dir must be visible to every
worker (a shared file system on a cluster). SLURM with dask-jobqueue: docs/distributed.md.

Unfolding toys (:func:`run_unfolding_dask`, ``cevnsjax unfold ... --workers N | --scheduler ADDRESS``):
every missing chunk of toys of :func:`cevnsjax.stats.unfold.toy_ensemble` is one Dask task, which
receives the (small, picklable) :class:`~cevnsjax.stats.unfold.UnfoldingProblem` and writes its chunk
file atomically; toy i is drawn with its own key fold_in(PRNGKey(seed + 1), i), so a chunk is a pure
function of its index. Lost tasks are retried by Dask; chunks still without a file afterwards are
submitted again (from the manifest), and the client assembles the result from the files: bit for bit
that of ``run_unfolding`` in-process with the same ``chunk_size``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ObjectiveSpec", "spec_objective", "dask_client", "run_scan_dask", "run_toy_chunks_dask",
           "run_unfolding_dask", "cli_unfold"]

_CACHE: dict = {}


@dataclass(frozen=True)
class ObjectiveSpec:
    """A recipe for a scan objective that a worker can rebuild: ``factory(**kwargs)`` returns the
    jittable ``values -> -2 ln L``. ``factory`` is a module-level function (pickled by name) or its
    ``"module:function"`` path; ``kwargs`` must be picklable (names, numbers, paths, preset names)."""

    factory: Callable | str
    kwargs: Mapping = field(default_factory=dict)
    x64: bool = True

    def key(self) -> str:
        f = self.factory if isinstance(self.factory, str) else f"{self.factory.__module__}:{self.factory.__qualname__}"
        return f + json.dumps(dict(self.kwargs), sort_keys=True, default=str) + str(self.x64)

    def build(self) -> Callable:
        """The objective (built once per process and cached)."""
        k = self.key()
        if k not in _CACHE:
            import cevnsjax

            if self.x64:
                cevnsjax.enable_x64()
            f = self.factory
            if isinstance(f, str):
                mod, _, name = f.partition(":")
                if not name:
                    raise ValueError(f"ObjectiveSpec factory {f!r}: write 'module:function'")
                f = getattr(importlib.import_module(mod), name)
            _CACHE[k] = f(**dict(self.kwargs))
        return _CACHE[k]


def spec_objective(spec: str, priors: Mapping, profile_names: Sequence[str], asimov: bool = False,
                   float32: bool = False) -> Callable:
    """The objective of ``cevnsjax scan``: -2 ln L of one experiment (TOML path or preset name) with the
    nuisances ``profile_names`` under ``priors`` (name -> (kind, a, b)) as constraint terms, as the
    ScanObjective of :meth:`JointModel.scan_objective` (residuals and Gauss-Newton where the likelihood
    is Gaussian), so that a Dask scan and a local one compute the same thing."""
    import jax.numpy as jnp

    from cevnsjax.io.spec import experiment_from_spec, load_spec
    from cevnsjax.stats.model import Analysis, JointModel

    exp = experiment_from_spec(load_spec(spec))
    model = JointModel([Analysis(exp, {n: tuple(priors[n]) if isinstance(priors[n], list) else priors[n]
                                       for n in profile_names})])
    obs = model.asimov() if asimov else model.observed()
    obs = {k: jnp.asarray(v, jnp.float32 if float32 else jnp.float64) for k, v in obs.items()}
    return model.scan_objective(obs, list(profile_names))  # what JointModel.scan runs: same solver, same result


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, threads_per_worker: int = 1):
    """A ``dask.distributed.Client``: connected to ``scheduler`` (an address, e.g. ``tcp://host:8786``), or
    to an embedded ``LocalCluster`` of ``workers`` processes (one thread each). Closed on exit."""
    from dask.distributed import Client, LocalCluster

    if (scheduler is None) == (workers is None):
        raise ValueError("give either scheduler=ADDRESS or workers=N (an embedded LocalCluster), not "
                         f"{'both' if scheduler else 'neither'}")
    if scheduler is not None:
        with Client(scheduler) as c:
            yield c
        return
    if int(workers) < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    with LocalCluster(n_workers=int(workers), threads_per_worker=threads_per_worker, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def _device():
    import jax

    return jax.local_devices()[:1]


def _chunk_task(spec: ObjectiveSpec, grid_json, kwargs: dict, chunks: list) -> list:
    """On a worker: compute (and write) the chunks ``chunks`` that have no file yet."""
    from cevnsjax.stats.scan import Grid, run_scan

    run_scan(spec.build(), Grid.from_json(grid_json), chunks=chunks, assemble=False, resume=True,
             progress=False, devices=_device(), **kwargs)
    return chunks


def run_scan_dask(spec: ObjectiveSpec, grid, *, client, out_dir, fixed: Mapping | None = None,
                  profile: Mapping | None = None, chunk_size: int = 4096, resume: bool = True,
                  fingerprint: str | None = None, tasks_per_worker: int = 4, progress: bool = True,
                  **scan_kwargs):
    """:func:`cevnsjax.stats.scan.run_scan` with every group of chunks a Dask task on ``client``'s
    workers (see the module docstring). ``scan_kwargs``: further run_scan settings (dtype,
    nuisance_mode, newton_iters, coarse_iters, coarse_points, tol, valid_names). Returns the ScanResult;
    ``attrs`` gain ``n_workers``, ``n_tasks`` and the cluster's ``points_per_second``."""
    from dask.distributed import as_completed

    from cevnsjax.stats.scan import Grid, run_scan

    if out_dir is None:
        raise ValueError("run_scan_dask needs out_dir (a folder every worker can write): the chunk files "
                         "are how the workers hand back their results")
    grid = grid if isinstance(grid, Grid) else Grid(grid)
    out = Path(out_dir).resolve()
    kw = dict(fixed=dict(fixed or {}), profile=profile, chunk_size=chunk_size, fingerprint=fingerprint,
              out_dir=str(out), **scan_kwargs)
    objective = spec.build()
    t0 = time.perf_counter()
    # 1. manifest + coarse warm-start table, here
    run_scan(objective, grid, chunks=[], assemble=False, resume=resume, progress=False, devices=_device(), **kw)
    chunk = int(json.loads((out / "manifest.json").read_text())["chunk"])
    n_chunks = int(math.ceil(grid.size / chunk))
    todo = [k for k in range(n_chunks) if not (out / "chunks" / f"chunk_{k:06d}.npz").exists()]
    # 2. one task per contiguous group of missing chunks
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    n_tasks = min(len(todo), max(1, tasks_per_worker * n_workers))
    groups = [list(map(int, g)) for g in np.array_split(np.asarray(todo, int), n_tasks)] if todo else []
    t_run = time.perf_counter()
    futures = [client.submit(_chunk_task, spec, grid.to_json(), kw, g, pure=False, retries=2) for g in groups]
    done = 0
    for fut in as_completed(futures):
        done += len(fut.result())
        if progress:
            print(f"\rchunks {done}/{len(todo)}", end="", flush=True)
    if progress and todo:
        print()
    run_s = time.perf_counter() - t_run
    # 3. assemble from the files
    res = run_scan(objective, grid, resume=True, progress=False, devices=_device(), **kw)
    n_pts = sum(min(chunk, grid.size - k * chunk) for k in todo)
    res.attrs.update(n_workers=n_workers, n_tasks=len(groups), n_computed=int(n_pts), run_seconds=float(run_s),
                     total_seconds=float(time.perf_counter() - t0),
                     points_per_second=float(n_pts / run_s) if n_pts and run_s > 0 else float("nan"))
    return res


def cli_scan(spec: str, priors: Mapping, profile_names: Sequence[str], grid, *, scheduler: str | None = None,
             workers: int | None = None, asimov: bool = False, float32: bool = False, **kwargs):
    """``cevnsjax scan ... --scheduler ADDRESS | --workers N``: the CLI's scan objective as an
    :class:`ObjectiveSpec` (spec path made absolute for the workers), run by :func:`run_scan_dask`
    (:func:`dask_client` refuses both or neither)."""
    p = Path(spec)
    spec = str(p.resolve()) if p.exists() else spec
    ospec = ObjectiveSpec(spec_objective, {"spec": spec, "priors": {k: list(v) if isinstance(v, tuple) else v
                                                                    for k, v in dict(priors).items()},
                                           "profile_names": list(profile_names), "asimov": bool(asimov),
                                           "float32": bool(float32)})
    with dask_client(scheduler=scheduler, workers=workers) as client:
        return run_scan_dask(ospec, grid, client=client, **kwargs)


# --------------------------------------------------------------------------- unfolding toys
def _toy_task(problem, betas, n_toys: int, seed: int, chunks: list, chunk_size: int, out_dir: str,
              x64: bool) -> list:
    """On a worker: compute (and write) the toy chunks ``chunks`` that have no file yet."""
    import jax

    from cevnsjax.config import enable_x64
    from cevnsjax.stats.unfold import run_toy_chunks

    if x64:
        enable_x64()
    with jax.default_device(_device()[0]):
        run_toy_chunks(problem, betas, n_toys, seed, chunks, chunk_size=chunk_size, out_dir=out_dir)
    return chunks


def run_toy_chunks_dask(client, problem, betas, n_toys: int, seed: int, chunks: Sequence[int], *,
                        chunk_size: int, out_dir, progress: bool = False, rounds: int = 3) -> dict:
    """Run the toy chunks ``chunks`` of :func:`cevnsjax.stats.unfold.run_toy_chunks` as one Dask task each
    (retried by Dask when a worker is lost); chunks still without a file in ``out_dir`` after that are
    submitted again, up to ``rounds`` times. Returns timing figures (n_workers, n_tasks, toys_per_second)."""
    from dask.distributed import as_completed

    from cevnsjax.config import x64_enabled
    from cevnsjax.stats.unfold import toy_chunk_file

    out = Path(out_dir).resolve()
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    betas = np.asarray(betas, float)
    todo, n_tasks, last_err = [int(k) for k in chunks], 0, None
    t0 = time.perf_counter()
    for _ in range(int(rounds)):
        futures = [client.submit(_toy_task, problem, betas, int(n_toys), int(seed), [k], int(chunk_size), str(out),
                                 x64_enabled(), pure=False, retries=2) for k in todo]
        n_tasks += len(futures)
        for i, fut in enumerate(as_completed(futures), 1):
            try:
                fut.result()
            except Exception as err:  # noqa: BLE001 (a lost worker beyond the retries: resubmitted below)
                last_err = err
            if progress:
                print(f"\rtoy chunks {i}/{len(todo)}", end="", flush=True)
        if progress:
            print()
        todo = [k for k in todo if not toy_chunk_file(out, k).exists()]
        if not todo:
            break
    if todo:
        raise RuntimeError(f"{len(todo)} toy chunks (e.g. {todo[0]}) have no file after {rounds} rounds of Dask "
                           f"tasks; last error: {last_err!r}")
    run_s = time.perf_counter() - t0
    n = sum(min(int(chunk_size), int(n_toys) - k * int(chunk_size)) for k in chunks)
    return {"n_workers": n_workers, "n_tasks": n_tasks, "run_seconds": run_s,
            "toys_per_second": n / run_s if run_s > 0 else float("nan")}


def run_unfolding_dask(scenario=1, *, client, out_dir, **kwargs):
    """:func:`cevnsjax.stats.unfold.run_unfolding` with every chunk of toys a Dask task on ``client``'s
    workers. ``out_dir``: the folder for the manifest and chunk files (visible to every worker)."""
    from cevnsjax.stats.unfold import run_unfolding

    if out_dir is None:
        raise ValueError("run_unfolding_dask needs out_dir (a folder every worker can write): the chunk files "
                         "are how the workers hand back their toys")
    return run_unfolding(scenario, client=client, out_dir=out_dir, **kwargs)


def cli_unfold(scenario, *, scheduler: str | None = None, workers: int | None = None, **kwargs):
    """``cevnsjax unfold ... --scheduler ADDRESS | --workers N``: :func:`run_unfolding_dask` on a running
    scheduler or an embedded LocalCluster of N worker processes."""
    with dask_client(scheduler=scheduler, workers=workers) as client:
        return run_unfolding_dask(scenario, client=client, **kwargs)
