"""Parameter scans at scale: Delta chi^2 over grids of 1-3 parameters, vectorised, chunked, sharded
over devices and hosts, resumable.

The engine is generic. It scans any jittable ``objective(values: dict[str, Array]) -> -2 ln L``
(a scalar, or a vector of terms, e.g. one per experiment, that is summed) where ``values`` holds the
grid parameters of one point, the ``fixed`` values and the nuisances. The remaining parameters are

* fixed (``fixed={"name": value}`` or closed over by the objective);
* profiled (``profile={"name": (start, lo, hi)}``): minimised at every grid point by a vectorised,
  fixed-iteration, projected Levenberg-Marquardt Newton method (below), warm-started from the
  profiled solution at the nearest point of a coarse sub-grid solved first;
* or marginalised (``nuisance_mode="marginal"``): the Laplace approximation of
  ``-2 ln ∫ L dnu`` with a flat prior inside the box, ``chi2_min + ln det(H/2) - n ln 2 pi``
  (H = Hessian of chi^2 in the nuisances at the profiled minimum; the constant prior volume
  cancels in Delta chi^2).

Memory is fixed by ``chunk_size`` whatever the grid size: the grid is walked in chunks of
``chunk_size`` points (flat C order), the unit of the files and of resuming; each chunk is solved in
batches of ``batch_size`` points by one jitted function (compiled once, the coarse warm-start points
included), ``vmap``-ed over the points and split over the devices with ``shard_map`` so that every
device runs its own Newton loop without communication (batches are padded by repeating their last
point; padded results are discarded).

Resumable: every finished chunk is written to ``out_dir/chunks/chunk_NNNNNN.npz`` through a
temporary file and :func:`os.replace` (atomic), beside ``manifest.json`` (grid, fixed values,
nuisances, settings and the caller's objective ``fingerprint``). A scan killed at any moment and
started again with the same arguments recomputes only the missing chunks and returns exactly the
result of an uninterrupted run: every chunk is a pure function of its points and of the coarse
warm-start table (itself saved), never of what ran before it. A directory written with other
settings is refused (:class:`ScanMismatchError`, naming the keys that differ).

Why projected Levenberg-Marquardt Newton for profiling (the one optimiser core,
:func:`cevnsjax.stats.optimize.newton`, shared with fits and profiles; measured in ``benchmarks/bench_scan.py``):
the nuisances of CEvNS fits are few (Dresden-II: 7 background parameters, 3 of them linear) and
badly scaled (A ~ 20, B ~ 150, C ~ 4, w ~ 0.1); Newton steps are invariant to that scaling and solve
the linear ones in one step, so 8-12 iterations reach the minimum to < 1e-6 in chi^2 where a
first-order method (Adam, L-BFGS with a fixed iteration budget) needs hundreds. Bounds are handled
by projection with an active set (variables at a bound whose gradient points outwards are held), not
by a transform, so linear nuisances stay quadratic. Each iteration costs one Hessian (forward over
reverse), cheap for <= ~10 nuisances; a step is accepted only when chi^2 decreases (damping x0.3 on
success, x10 on failure), so the iteration is monotone.

Two options make profiled scans several times faster where the objective allows them:
``precompute=`` evaluates what does not depend on the nuisances (e.g. the signal spectrum when only
background parameters are profiled) once per grid point, outside the Newton loop; ``hessian=
"gauss-newton"`` takes an objective that returns normalised residuals r (``-2 ln L = sum r^2``) and
uses H = 2 J^T J from a forward-mode Jacobian instead of the exact Hessian (Levenberg-Marquardt
proper; same minimum). Dresden-II, 500 x 500 (m_Z', g_Z') with 7 background nuisances on 2 cores:
``benchmarks/bench_scan.py --profiled-only``. ``newton_decrement`` = g^T H^-1 g (the
predicted remaining decrease of chi^2) is stored per point; ``converged`` is ``decrement < tol``.

Multi-host (``jax.distributed``): start the same script on every host; each process takes the chunks
``k`` with ``k % process_count == process_index`` and runs them on its local devices, writing into
the same (shared) ``out_dir``; every process then waits for all chunk files and assembles the same
result (process 0 writes ``scan.nc``). A worked example with two hosts of 4 GPUs each::

    # scan_zprime.py
    import jax, cevnsjax as cj
    from cevnsjax.stats.scan import Grid, parse_axis, run_scan
    jax.distributed.initialize()          # reads the coordinator from the flags/env below
    cj.enable_x64()
    grid = Grid([parse_axis("m_zprime_MeV=log:1:1e4:500"), parse_axis("g_zprime=log:1e-7:1e-3:500")])
    res = run_scan(objective, grid, profile=nuisances, chunk_size=65536, out_dir="/shared/scan_zp",
                   fingerprint="dresden_ii v1")

    # host 0 (10.0.0.1) and host 1, same command with its own process id:
    JAX_COORDINATOR_ADDRESS=10.0.0.1:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python scan_zprime.py
    JAX_COORDINATOR_ADDRESS=10.0.0.1:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=1 python scan_zprime.py

(or ``jax.distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=i)``; under SLURM
``srun`` a bare ``initialize()`` finds everything). ``process_index``/``process_count`` can also be
given by hand to split a scan over independent jobs without ``jax.distributed`` at all; a killed
host is restarted with the same command and resumes its share.

Results: :class:`ScanResult` (NumPy arrays; defined in :mod:`cevnsjax.results` with the other results,
re-exported here, as are the grids of :mod:`cevnsjax.stats.grid`) with ``to_dataset()`` -> ``xarray.Dataset`` (``chi2``,
``delta_chi2``, one variable per nuisance, ``newton_decrement``, ``converged``; the axes as
coordinates) and ``save(path)`` (netCDF; xarray is imported only there, so a scan runs without it).
:func:`contours` gives the confidence contours (``"90%"``, ``"2sigma"``, ``"3sigma"``, Wilks with
``dof`` degrees of freedom), :func:`exclusion_curve` the upper envelope of the allowed region in a
(mass, coupling) plane, :func:`plot_scan` / :func:`plot_exclusion` draw them.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.names import check_known, did_you_mean
from cevnsjax.results import ScanResult, load_scan
from cevnsjax.stats.grid import Axis, Grid, parse_axis
from cevnsjax.stats.optimize import newton

__all__ = [
    "Axis", "Grid", "parse_axis", "ScanResult", "ScanMismatchError", "ScanObjective", "run_scan", "load_scan",
    "confidence_threshold", "contours", "exclusion_curve", "plot_scan", "plot_exclusion",
]

MANIFEST_VERSION = 1


class ScanMismatchError(ValueError):
    """``out_dir`` holds a scan made with other settings; the message names the keys that differ."""


# ------------------------------------------------------------------------------------------ progress
def _progress(total, done, enabled):
    """A tqdm bar over the grid points (resumed points counted as done)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, desc="scan", unit="pt", unit_scale=True,
                mininterval=0.25, file=sys.stderr)


# ------------------------------------------------------------------------------------------- engine
def _atomic_savez(path: Path, **arrays):
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str):
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _normalise_profile(profile, grid, fixed, valid_names):
    out = {}
    for name, spec in (profile or {}).items():
        if valid_names is not None:
            check_known([name], valid_names, "nuisance")
        if name in grid.names or name in fixed:
            raise ValueError(f"nuisance {name!r} is also a grid axis or fixed; a parameter is scanned, fixed or profiled")
        try:
            start, lo, hi = spec
        except (TypeError, ValueError):
            raise ValueError(f"profile[{name!r}] = {spec!r} must be (start, lo, hi); use None for an open bound") from None
        lo = -np.inf if lo is None else float(lo)
        hi = np.inf if hi is None else float(hi)
        start = float(start)
        if not (lo < hi) or not (lo <= start <= hi) or not np.isfinite(start):
            raise ValueError(f"profile[{name!r}]: need lo < hi and lo <= start <= hi with a finite start, "
                             f"got start={start}, lo={lo}, hi={hi}")
        out[name] = (start, lo, hi)
    return out


def _jsonable(v):
    a = np.asarray(v, dtype=float)
    return a.tolist()


def _coarse_index(n, per_axis):
    """Indices of the coarse sub-grid along an axis of n points (<= per_axis of them, ends included)."""
    if n <= per_axis:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, per_axis)).astype(int))


@dataclass(frozen=True)
class ScanObjective:
    """An objective that carries its structure to :func:`run_scan`: ``fn(values)`` (or ``fn(values, pre)``
    with ``precompute``) returns -2 ln L (``hessian="exact"``) or the residual vector r with
    -2 ln L = sum r^2 (``hessian="gauss-newton"``); ``precompute(values) -> pre`` runs once per grid point
    on the grid and fixed values. Built by :meth:`cevnsjax.stats.model.JointModel.scan_objective`."""

    fn: Callable
    precompute: Callable | None = None
    hessian: str = "exact"

    def __call__(self, *args):
        return self.fn(*args)


def _point_solver(point, devices):
    """``point(xg, nu0, n_iter)`` over a batch of points, each device solving its own share with its own
    loop (``shard_map``; no communication). Under a plain sharded ``vmap`` the batched while loop of
    the Newton solver needs an all-reduce of "is any point still running" across the devices at every
    iteration; with several host-CPU devices on few cores that rendezvous stalled and XLA aborted the
    process after 40 s (seen 2026-12-05, jax 0.10.2, 4 fake devices on 2 cores). Returns the jitted
    function and the sharding of its batched arguments."""
    P = jax.sharding.PartitionSpec
    mesh = jax.sharding.Mesh(np.array(devices), ("points",))
    sh, rep = jax.sharding.NamedSharding(mesh, P("points")), jax.sharding.NamedSharding(mesh, P())
    per_device = jax.shard_map(jax.vmap(point, in_axes=(0, 0, None)), mesh=mesh,
                               in_specs=(P("points"), P("points"), P()), out_specs=P("points"), check_vma=False)
    return jax.jit(per_device, in_shardings=(sh, sh, rep), out_shardings=sh), sh


def run_scan(objective: Callable, grid: Grid | Sequence, *, fixed: Mapping | None = None,
             profile: Mapping | None = None, chunk_size: int = 4096, out_dir=None, resume: bool = True,
             devices=None, progress: bool = True, dtype=None, fingerprint: str | None = None,
             nuisance_mode: str = "profile", newton_iters: int | None = None, coarse_iters: int = 40,
             newton_tol: float | None = None,
             coarse_points: int = 12, tol: float = 1e-4, hessian: str = "exact", precompute: Callable | None = None,
             batch_size: int | None = None, valid_names: Sequence[str] | None = None,
             process_index: int | None = None, process_count: int | None = None,
             on_chunk: Callable | None = None, wait_timeout_s: float = 24 * 3600,
             chunks: Sequence[int] | None = None, assemble: bool = True) -> ScanResult | None:
    """Delta chi^2 of ``objective`` over ``grid`` (see the module docstring).

    Args:
        objective: jittable ``values -> -2 ln L`` (scalar or vector of terms); ``values`` maps the
            grid names, the ``fixed`` names and the ``profile`` names to scalars of ``dtype``.
            With ``precompute`` it is called as ``objective(values, pre)``.
        grid: a :class:`Grid` or a list of axes (``Axis`` or ``"NAME=lin|log:START:STOP:N"``).
        fixed: name -> value passed unchanged at every point.
        profile: name -> (start, lo, hi) nuisances minimised at every point (None = open bound).
        chunk_size: points per chunk (rounded up to a multiple of the device count): the unit of the
            chunk files, of resuming and of the Dask tasks.
        batch_size: points per compiled call (vmapped and sharded over the devices; a chunk is solved
            in batches of this size, all with one executable, the coarse warm-start points too).
            None: 64 per device on CPU, where the per-point arrays then stay in cache (2 cores, Dresden-II
            plane: profiled 1.4x and unprofiled 1.7x faster than 1024 per device), the whole chunk on
            GPU/TPU. Sets the memory of the computation.
        out_dir: folder for the manifest, chunk files and ``scan.nc``; None keeps all in memory.
        resume: reuse finished chunks in ``out_dir`` (False deletes them first).
        devices: devices to shard each chunk over (default: this process's local devices).
        dtype: float64 (default when x64 is on) or float32.
        fingerprint: a string identifying the objective (spec, data, code version); stored in the
            manifest so that resuming with another objective is refused.
        nuisance_mode: 'profile' or 'marginal' (Laplace approximation, see the module docstring).
        newton_tol: stop a point's Newton iterations early once a step lowers chi^2 by < newton_tol
            (0: always ``newton_iters``); a batch stops when all its points have. Default 0 with the
            exact Hessian, 1e-7 with Gauss-Newton.
        newton_iters / coarse_iters: Newton iterations per point from the warm start (default 10 with
            the exact Hessian, 20 with Gauss-Newton, which converges linearly in non-linear directions) / on the
            coarse sub-grid (``coarse_points`` per axis) from ``start``.
        tol: ``converged`` when the Newton decrement (predicted chi^2 decrease) is below this.
        hessian: 'exact' (forward over reverse) or 'gauss-newton': then ``objective`` returns the
            vector r of normalised residuals, ``-2 ln L = sum(r**2)`` (data terms (n - mu)/sigma and
            Gaussian constraints (x - mu)/sigma), and each Newton step uses H = 2 J^T J from a
            forward-mode Jacobian: the same minimum, several times cheaper per step with a handful
            of nuisances (``chi2_parts`` is then not kept; the marginal mode still uses the exact
            Hessian at the minimum).
        precompute: ``values -> pre`` (any pytree) evaluated once per grid point from the grid and
            ``fixed`` values alone, before the nuisances are profiled; ``objective(values, pre)`` then
            reuses it in every Newton step. Put there what does not depend on the nuisances, e.g.
            the signal spectrum when only background parameters are profiled: the optimiser's loop
            then evaluates only the cheap part (Dresden-II Z' plane with 7 background nuisances: see
            ``benchmarks/bench_scan.py``).
        valid_names: known parameter names; unknown grid, fixed or profile names raise.
        process_index / process_count: this process's share of the chunks (default from JAX).
        on_chunk: called as ``on_chunk(k, n_chunks)`` after chunk ``k`` is written.
        chunks: compute only these chunk indices (flat C order, ``chunk`` points each) instead of this
            process's share; with ``assemble=False`` the call returns None once they are written (the
            hook of cevnsjax.stats.distributed: one Dask task per group of chunks).
    """
    t_start = time.perf_counter()
    if isinstance(objective, ScanObjective):
        if precompute is not None or hessian != "exact":
            raise ValueError("the objective is a ScanObjective, which carries its own precompute and hessian; "
                             "do not pass precompute= or hessian= as well")
        objective, precompute, hessian = objective.fn, objective.precompute, objective.hessian
    grid = grid if isinstance(grid, Grid) else Grid(grid)
    fixed = dict(fixed or {})
    if valid_names is not None:
        check_known(list(grid.names) + list(fixed), valid_names)
    for n in fixed:
        if n in grid.names:
            raise ValueError(f"{n!r} is both a grid axis and fixed; drop it from one of them")
    prof = _normalise_profile(profile, grid, fixed, valid_names)
    if nuisance_mode not in ("profile", "marginal"):
        raise ValueError(f"nuisance_mode={nuisance_mode!r}; use 'profile' or 'marginal'")
    if hessian not in ("exact", "gauss-newton"):
        raise ValueError(f"hessian={hessian!r} is not valid{did_you_mean(str(hessian), ('exact', 'gauss-newton'))}; "
                         "use 'exact' or 'gauss-newton' (objective returns residuals r, -2 ln L = sum r^2)")
    least_squares = hessian == "gauss-newton"
    newton_iters = (20 if least_squares else 10) if newton_iters is None else newton_iters
    newton_tol = (1e-7 if least_squares else 0.0) if newton_tol is None else newton_tol
    if nuisance_mode == "marginal" and not prof:
        raise ValueError("nuisance_mode='marginal' needs nuisances in profile={name: (start, lo, hi)}")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer")
    x64 = bool(jax.config.jax_enable_x64)
    dtype = np.dtype(dtype if dtype is not None else (np.float64 if x64 else np.float32))
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype={dtype}; use float32 or float64")
    if dtype == np.float64 and not x64:
        raise ValueError("dtype=float64 needs x64: call cevnsjax.enable_x64() first (or pass dtype=float32)")

    pi = jax.process_index() if process_index is None else int(process_index)
    pc = jax.process_count() if process_count is None else int(process_count)
    if not (pc >= 1 and 0 <= pi < pc):
        raise ValueError(f"process_index={pi} must be in [0, process_count={pc})")
    devices = list(devices) if devices is not None else list(jax.local_devices())
    nd = len(devices)
    chunk = int(math.ceil(min(chunk_size, grid.size) / nd) * nd)  # no padding beyond a small grid
    n_chunks = int(math.ceil(grid.size / chunk))

    names_nu = list(prof)
    n_nu = len(names_nu)
    x0 = np.array([prof[k][0] for k in names_nu], dtype)
    lo = jnp.asarray(np.array([prof[k][1] for k in names_nu], dtype))
    hi = jnp.asarray(np.array([prof[k][2] for k in names_nu], dtype))
    fixed_c = {k: jnp.asarray(v, dtype) for k, v in fixed.items()}
    axis_names = grid.names

    def values_of(xg, nu=None):
        v = dict(fixed_c)
        v.update({n: xg[i] for i, n in enumerate(axis_names)})
        if nu is not None:
            v.update({n: nu[j] for j, n in enumerate(names_nu)})
        return v

    if precompute is not None and not callable(precompute):
        raise TypeError(f"precompute={precompute!r} must be a function values -> pytree (or None)")

    def objective_at(xg):
        """nu -> objective output at grid point xg (with the point's precomputed part)."""
        if precompute is None:
            return lambda nu: objective(values_of(xg, nu))
        pre = precompute(values_of(xg))
        return lambda nu: objective(values_of(xg, nu), pre)

    out_struct = jax.eval_shape(lambda: objective_at(jnp.ones(len(axis_names), dtype))(jnp.asarray(x0)))
    if least_squares and len(out_struct.shape) != 1:
        raise ValueError(f"hessian='gauss-newton' needs the objective to return the residual vector r (shape (m,), "
                         f"-2 ln L = sum r^2), got shape {out_struct.shape}; return r or use hessian='exact'")
    if len(out_struct.shape) > 1:
        raise ValueError(f"objective returns shape {out_struct.shape}; it must return a scalar -2 ln L or a vector of terms")
    n_parts = out_struct.shape[0] if out_struct.shape and not least_squares else 0

    def point(xg, nu0, n_iter):
        at = objective_at(xg)
        f_out = lambda nu: jnp.asarray(at(nu), dtype)
        f_parts = (lambda nu: jnp.sum(f_out(nu) ** 2)[None]) if least_squares else f_out
        f = lambda nu: jnp.sum(f_parts(nu))
        if not n_nu:
            parts = f_parts(nu0)
            return jnp.sum(parts), (parts[:0] if least_squares else parts), nu0, jnp.zeros((), dtype)
        nu, fx, dec, H, free, _ = newton(f, nu0, lo, hi, n_iter, tol=newton_tol,
                                         residuals=f_out if least_squares else None)
        parts = f_parts(nu)
        chi2 = jnp.sum(parts)
        parts = parts[:0] if least_squares else parts
        if nuisance_mode == "marginal":
            if least_squares:  # the Laplace term needs the exact curvature, not 2 J^T J
                m = free[:, None] & free[None, :]
                H = jnp.where(m, jax.hessian(f)(nu), 0.0) + jnp.diag(jnp.where(free, 0.0, 1.0))
            sign, logdet = jnp.linalg.slogdet(0.5 * H)  # fixed (at-bound) rows are identity: 0.5 -> ln 0.5 each
            nfree = jnp.sum(free)
            logdet = logdet - (n_nu - nfree) * jnp.log(0.5)
            chi2 = jnp.where(sign > 0, chi2 + logdet - nfree * math.log(2 * math.pi), jnp.nan)
        return chi2, parts, nu, dec

    batched, sh = _point_solver(point, devices)
    if batch_size is None:
        batch_size = 64 * nd if devices[0].platform == "cpu" else chunk
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (points per compiled call) or None")
    batch = int(math.ceil(min(batch_size, chunk) / nd) * nd)

    def dispatch(flat_idx, init, iters):
        """Start solving these points (asynchronously), padded to whole batches by repeating the last
        point: one executable for every call. Returns what :func:`collect` needs."""
        m = flat_idx.size
        pad = -m % batch
        xg = grid.points(np.concatenate([flat_idx, np.repeat(flat_idx[-1:], pad)])).astype(dtype)
        ini = np.asarray(np.concatenate([init, np.repeat(init[-1:], pad, 0)]), dtype).reshape(m + pad, n_nu)
        it = jnp.asarray(iters, jnp.int32)
        return m, [batched(jax.device_put(xg[s:s + batch], sh), jax.device_put(ini[s:s + batch], sh), it)
                   for s in range(0, m + pad, batch)]

    def collect(m, outs):
        return [np.concatenate([np.asarray(o[i]) for o in outs])[:m] for i in range(4)]

    def run_points(flat_idx, init, iters):
        """Synchronously solve points (any count), a chunk at a time; returns numpy arrays."""
        res = [collect(*dispatch(flat_idx[s:s + chunk], init[s:s + chunk], iters))
               for s in range(0, flat_idx.size, chunk)]
        return [np.concatenate([r[i] for r in res]) for i in range(4)]

    # ---------------------------------------------------------------------- manifest and resume
    manifest = dict(version=MANIFEST_VERSION, grid=grid.to_json(), fixed={k: _jsonable(v) for k, v in fixed.items()},
                    profile={k: [v[0], v[1] if np.isfinite(v[1]) else None, v[2] if np.isfinite(v[2]) else None]
                             for k, v in prof.items()},
                    fingerprint=fingerprint if fingerprint is not None else
                    f"{getattr(objective, '__module__', '?')}.{getattr(objective, '__qualname__', repr(objective))}",
                    chunk=chunk, dtype=dtype.name, nuisance_mode=nuisance_mode, newton_iters=int(newton_iters),
                    **({"newton_tol": float(newton_tol)} if newton_tol else {}),
                    **({"hessian": hessian} if least_squares else {}),
                    coarse_iters=int(coarse_iters), coarse_points=int(coarse_points), n_parts=n_parts)
    out = Path(out_dir) if out_dir is not None else None
    chunk_dir = None
    if out is not None:
        chunk_dir = out / "chunks"
        chunk_dir.mkdir(parents=True, exist_ok=True)
        mpath = out / "manifest.json"
        if mpath.exists() and resume:
            old = json.loads(mpath.read_text())
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            if diff:
                detail = "; ".join(f"{k}: directory has {old.get(k)!r}, this run {manifest.get(k)!r}" for k in diff)
                raise ScanMismatchError(f"{out} holds a scan with other settings ({detail}). Use a new out_dir, the "
                                        "same settings, or resume=False to discard it")
        elif pi == 0:
            if not resume:
                for f in glob.glob(str(chunk_dir / "chunk_*.npz")) + [str(out / "coarse.npz")]:
                    if os.path.exists(f):
                        os.remove(f)
            _atomic_write_text(mpath, json.dumps(manifest, indent=1))
        for f in glob.glob(str(chunk_dir / f"*.{os.getpid()}.tmp")):
            os.remove(f)

    def chunk_path(k):
        return chunk_dir / f"chunk_{k:06d}.npz"

    t_compile = time.perf_counter()
    # ------------------------------------------------------------ coarse warm-start table
    coarse_sel = [_coarse_index(n, coarse_points) for n in grid.shape]
    coarse_nu = None
    if n_nu:
        cpath = out / "coarse.npz" if out is not None else None
        if cpath is not None and cpath.exists():
            coarse_nu = np.load(cpath)["nu"]
        else:
            mesh_idx = np.meshgrid(*coarse_sel, indexing="ij")
            cflat = np.ravel_multi_index([m.ravel() for m in mesh_idx], grid.shape)
            cres = run_points(cflat, np.repeat(x0[None], cflat.size, 0), coarse_iters)
            coarse_nu = cres[2].reshape([len(c) for c in coarse_sel] + [n_nu])
            if cpath is not None and pi == 0:
                _atomic_savez(cpath, nu=coarse_nu)

    def warm_start(flat_idx):
        if not n_nu:
            return np.zeros((flat_idx.size, 0), dtype)
        idx = np.unravel_index(flat_idx, grid.shape)
        near = tuple(np.abs(c[None, :] - i[:, None]).argmin(1) for c, i in zip(coarse_sel, idx))
        return coarse_nu[near]

    # ---------------------------------------------------------------------------------- chunks
    mine = [k for k in range(n_chunks) if k % pc == pi] if chunks is None else sorted({int(k) for k in chunks})
    if mine and not 0 <= mine[0] <= mine[-1] < n_chunks:
        raise ValueError(f"chunks={list(chunks)}: indices must lie in [0, {n_chunks})")
    done = {k for k in mine if chunk_dir is not None and chunk_path(k).exists()}
    todo = [k for k in mine if k not in done]
    results = {}
    n_done = sum(min(chunk, grid.size - k * chunk) for k in done)
    bar = _progress(sum(min(chunk, grid.size - k * chunk) for k in mine), n_done, progress)

    def finish(k, m, outs):
        outs = collect(m, outs)
        arrs = dict(chi2=outs[0], parts=outs[1], nu=outs[2], dec=outs[3])
        if chunk_dir is not None:
            _atomic_savez(chunk_path(k), **arrs)
        else:
            results[k] = arrs
        bar.update(m)
        if on_chunk is not None:
            on_chunk(k, n_chunks)

    if todo:  # compile before the clock starts (one executable for every batch; done already by the coarse table)
        z = jax.ShapeDtypeStruct((batch, len(axis_names)), dtype, sharding=sh)
        zi = jax.ShapeDtypeStruct((batch, n_nu), dtype, sharding=sh)
        batched.lower(z, zi, jnp.asarray(newton_iters, jnp.int32)).compile()
    pending = None
    t_run = time.perf_counter()
    n_computed = 0
    for k in todo:
        fi = np.arange(k * chunk, min((k + 1) * chunk, grid.size))
        m, outs = dispatch(fi, warm_start(fi).reshape(fi.size, n_nu), newton_iters)
        n_computed += m
        if pending is not None:  # write the previous chunk while this one runs (async dispatch)
            finish(*pending)
        pending = (k, m, outs)
    if pending is not None:
        finish(*pending)
    bar.close()
    t_end_run = time.perf_counter()
    if not assemble:
        return None

    # -------------------------------------------------------------------------------- assemble
    def load(k):
        if chunk_dir is None:
            return results[k]
        path = chunk_path(k)
        deadline = time.time() + wait_timeout_s
        while not path.exists():  # another host's share
            if time.time() > deadline:
                raise TimeoutError(f"chunk {k} ({path}) did not appear within {wait_timeout_s} s; "
                                   "is every process of the scan running?")
            time.sleep(1.0)
        with np.load(path) as z:
            return {n: z[n] for n in z.files}

    parts = [load(k) for k in range(n_chunks)]
    chi2 = np.concatenate([p["chi2"] for p in parts]).reshape(grid.shape)
    nus = np.concatenate([p["nu"] for p in parts]).reshape(grid.shape + (n_nu,))
    dec = np.concatenate([p["dec"] for p in parts]).reshape(grid.shape)
    chi2_parts = np.concatenate([p["parts"] for p in parts]).reshape(grid.shape + (n_parts,)) if n_parts else None
    t_total = time.perf_counter() - t_start
    run_s = t_end_run - t_run
    attrs = dict(fingerprint=manifest["fingerprint"], fixed=json.dumps(manifest["fixed"]),
                 profile=json.dumps(manifest["profile"]), nuisance_mode=nuisance_mode, dtype=dtype.name,
                 chunk=chunk, n_devices=nd, process_count=pc, n_computed=int(n_computed),
                 run_seconds=float(run_s), total_seconds=float(t_total), setup_seconds=float(t_run - t_compile),
                 points_per_second=float(n_computed / run_s) if run_s > 0 and n_computed else float("nan"))
    res = ScanResult(grid=grid, chi2=chi2, nuisances={n: nus[..., j] for j, n in enumerate(names_nu)},
                     newton_decrement=dec if n_nu else None, chi2_parts=chi2_parts, attrs=attrs, tol=tol)
    if out is not None and pi == 0:
        try:
            res.save(out / "scan.nc")
        except ImportError:  # no xarray / h5netcdf on this machine: NumPy file instead
            res.save(out / "scan.npz")
    return res


# ---------------------------------------------------------------------------------------- contours
_SIGMA_WORDS = {"1sigma": 1.0, "2sigma": 2.0, "3sigma": 3.0, "4sigma": 4.0, "5sigma": 5.0}


def _cl(level) -> float:
    if isinstance(level, str):
        s = level.strip().lower().replace(" ", "")
        if s.endswith("sigma"):
            try:
                z = float(s[:-5])
            except ValueError:
                raise ValueError(f"confidence level {level!r}: write e.g. '2sigma', '90%' or 0.9") from None
            return math.erf(z / math.sqrt(2.0))
        if s.endswith("%"):
            return float(s[:-1]) / 100.0
        return float(s)
    return float(level)


def confidence_threshold(level, dof: int) -> float:
    """Delta chi^2 threshold of a confidence level ('90%', '2sigma', 0.9) with ``dof`` degrees of
    freedom (Wilks): e.g. 4.605 for 90% and 2 dof, 6.180 for 2 sigma (95.45%) and 2 dof."""
    from scipy.stats import chi2 as _chi2

    cl = _cl(level)
    if not 0 < cl < 1:
        raise ValueError(f"confidence level {level!r} -> {cl}; it must lie in (0, 1)")
    return float(_chi2.ppf(cl, dof))


def as_result(ds) -> ScanResult:
    return ds if isinstance(ds, ScanResult) else ScanResult.from_dataset(ds)


def _axis_coord(a: Axis):
    return np.log10(a.values) if a.spacing == "log" else a.values


def _from_coord(a: Axis, c):
    return 10.0 ** c if a.spacing == "log" else c


def contours(ds, levels=("90%", "2sigma", "3sigma"), dof: int | None = None) -> dict:
    """Confidence regions of a scan (``ScanResult`` or the Dataset of ``to_dataset``).

    2-D grids: ``{level: [path (N, 2) array of (axis 0, axis 1) values, ...]}``, traced by marching
    squares (contourpy) with linear interpolation in each axis's own spacing (log axes in log10).
    1-D grids: ``{level: [(lo, hi), ...]}`` intervals with interpolated ends. ``dof`` defaults to the
    number of grid axes.
    """
    r = as_result(ds)
    axes = r.grid.axes
    dof = len(axes) if dof is None else dof
    d = r.delta_chi2
    out = {}
    if len(axes) == 1:
        x = _axis_coord(axes[0])
        for lev in levels:
            t = confidence_threshold(lev, dof)
            inside = d <= t
            ivals = []
            i = 0
            while i < len(x):
                if inside[i]:
                    j = i
                    while j + 1 < len(x) and inside[j + 1]:
                        j += 1
                    a = x[i] if i == 0 else x[i - 1] + (t - d[i - 1]) / (d[i] - d[i - 1]) * (x[i] - x[i - 1])
                    b = x[j] if j == len(x) - 1 else x[j] + (t - d[j]) / (d[j + 1] - d[j]) * (x[j + 1] - x[j])
                    ivals.append((float(_from_coord(axes[0], a)), float(_from_coord(axes[0], b))))
                    i = j + 1
                else:
                    i += 1
            out[lev] = ivals
        return out
    if len(axes) != 2:
        raise ValueError(f"contours need a 1-D or 2-D scan, this one has axes {r.grid.names}; slice it first")
    import contourpy

    X, Y = np.meshgrid(_axis_coord(axes[0]), _axis_coord(axes[1]), indexing="ij")
    gen = contourpy.contour_generator(X, Y, np.where(np.isfinite(d), d, np.inf))
    for lev in levels:
        t = confidence_threshold(lev, dof)
        lines = gen.lines(t)
        out[lev] = [np.column_stack([_from_coord(axes[0], ln[:, 0]), _from_coord(axes[1], ln[:, 1])]) for ln in lines]
    return out


def exclusion_curve(ds, mass: str | None = None, coupling: str | None = None, level="90%", dof: int | None = None):
    """Upper envelope of the allowed region in a (mass, coupling) plane: for every mass the largest
    coupling with Delta chi^2 <= threshold, interpolated (in the coupling axis's spacing) to where
    Delta chi^2 crosses the threshold above it.

    Returns ``(mass_values, coupling_limit, open_top)``: ``coupling_limit`` is NaN where no coupling
    on the grid is allowed, ``open_top`` marks masses allowed up to the top of the grid (the limit
    lies above the grid). ``dof`` defaults to 2 (a plane; pass 1 for a raster scan in mass).
    """
    r = as_result(ds)
    names = r.grid.names
    if len(names) != 2:
        raise ValueError(f"exclusion_curve needs a 2-D (mass, coupling) scan, got axes {names}")
    mass = names[0] if mass is None else mass
    coupling = names[1] if coupling is None else coupling
    for n in (mass, coupling):
        if n not in names:
            raise ValueError(f"{n!r} is not an axis of this scan{did_you_mean(n, names)}; axes: {names}")
    d = r.delta_chi2
    if names.index(mass) == 1:
        d = d.T
    am, ac = r.grid.axes[names.index(mass)], r.grid.axes[names.index(coupling)]
    t = confidence_threshold(level, 2 if dof is None else dof)
    c = _axis_coord(ac)
    lim = np.full(am.n, np.nan)
    open_top = np.zeros(am.n, bool)
    for i in range(am.n):
        ok = np.nonzero(d[i] <= t)[0]
        if ok.size == 0:
            continue
        j = ok[-1]
        if j == ac.n - 1:
            lim[i], open_top[i] = ac.values[-1], True
            continue
        x = c[j] + (t - d[i, j]) / (d[i, j + 1] - d[i, j]) * (c[j + 1] - c[j])
        lim[i] = _from_coord(ac, x)
    return am.values.copy(), lim, open_top


def plot_scan(ds, *args, **kwargs):
    """Moved to :func:`cevnsjax.plots.plot_scan` (this name delegates)."""
    from cevnsjax.plots import plot_scan as f

    return f(ds, *args, **kwargs)


def plot_exclusion(ds, *args, **kwargs):
    """Moved to :func:`cevnsjax.plots.plot_exclusion` (this name delegates)."""
    from cevnsjax.plots import plot_exclusion as f

    return f(ds, *args, **kwargs)
