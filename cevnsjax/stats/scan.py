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
``chunk_size`` points (flat C order), each chunk is ``vmap``-ed inside one jitted function (compiled
once) and sharded over the devices with :class:`jax.sharding.NamedSharding` (the chunk is padded to
a multiple of the device count by repeating its last point; padded results are discarded).

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
success, x10 on failure), so the iteration is monotone. ``newton_decrement`` = g^T H^-1 g (the
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

Results: :class:`ScanResult` (NumPy arrays) with ``to_dataset()`` -> ``xarray.Dataset`` (``chi2``,
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
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.names import check_known, closest
from cevnsjax.stats.optimize import newton

__all__ = [
    "Axis", "Grid", "parse_axis", "ScanResult", "ScanMismatchError", "run_scan", "load_scan",
    "confidence_threshold", "contours", "exclusion_curve", "plot_scan", "plot_exclusion",
]

MANIFEST_VERSION = 1


class ScanMismatchError(ValueError):
    """``out_dir`` holds a scan made with other settings; the message names the keys that differ."""


# ------------------------------------------------------------------------------------------- grids
def _closest(name, valid):
    c = closest(name, valid)
    return f" (did you mean {c!r}?)" if c else ""


def _check_name(name: str, valid_names, what="parameter"):
    if valid_names is not None:
        check_known([name], valid_names, what)


@dataclass(frozen=True)
class Axis:
    """One grid axis: ``n`` values of ``name`` from ``start`` to ``stop``, ``spacing`` 'lin' or 'log'."""

    name: str
    spacing: str
    start: float
    stop: float
    n: int

    def __post_init__(self):
        where = f"axis {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"axis name {self.name!r} must be a non-empty string, e.g. 'g_zprime'")
        if self.spacing not in ("lin", "log"):
            raise ValueError(f"{where}: spacing {self.spacing!r} is not valid{_closest(str(self.spacing), ('lin', 'log'))}; "
                             "use 'lin' or 'log'")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n <= 0:
            raise ValueError(f"{where}: N = {self.n!r} must be a positive integer (number of grid points), e.g. 50")
        for k in ("start", "stop"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise ValueError(f"{where}: {k.upper()} = {v!r} must be a finite number")
            object.__setattr__(self, k, float(v))
        object.__setattr__(self, "n", int(self.n))
        if self.spacing == "log":
            for k in ("start", "stop"):
                if getattr(self, k) <= 0:
                    raise ValueError(f"{where}: log spacing needs START and STOP > 0, got {k.upper()} = "
                                     f"{getattr(self, k)!r}; use lin spacing or a positive bound (e.g. 1e-6)")
        if self.n > 1 and not self.stop > self.start:
            raise ValueError(f"{where}: STOP = {self.stop!r} must exceed START = {self.start!r} when N = {self.n} > 1 "
                             "(swap them; grids run upwards)")
        if self.n == 1 and self.stop != self.start:
            raise ValueError(f"{where}: N = 1 needs START == STOP (one point), got {self.start!r} and {self.stop!r}")

    @property
    def values(self) -> np.ndarray:
        if self.n == 1:
            return np.array([self.start])
        if self.spacing == "lin":
            return np.linspace(self.start, self.stop, self.n)
        return np.geomspace(self.start, self.stop, self.n)

    def to_text(self) -> str:
        return f"{self.name}={self.spacing}:{self.start!r}:{self.stop!r}:{self.n}"

    def to_json(self) -> dict:
        return dict(name=self.name, spacing=self.spacing, start=self.start, stop=self.stop, n=self.n)


def parse_axis(text: str, valid_names: Sequence[str] | None = None) -> Axis:
    """``"NAME=lin|log:START:STOP:N"`` -> :class:`Axis` (e.g. ``"g_zprime=log:1e-6:1e-3:50"``).

    ``valid_names`` (from the caller, e.g. :func:`cevnsjax.experiment.valid_names`) rejects unknown
    parameters with the closest valid one. Every error names the field, the value and the fix.
    """
    form = "NAME=lin|log:START:STOP:N, e.g. g_zprime=log:1e-6:1e-3:50"
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"grid axis {text!r} must look like {form}")
    name, _, rest = text.partition("=")
    name = name.strip()
    if not name:
        raise ValueError(f"grid axis {text!r}: NAME is empty; write {form}")
    _check_name(name, valid_names)
    parts = [p.strip() for p in rest.split(":")]
    if len(parts) != 4:
        raise ValueError(f"grid axis {text!r}: got {len(parts)} field(s) after '=', need 4 "
                         f"(spacing, START, STOP, N); write {form}")
    spacing, s0, s1, sn = parts
    if spacing not in ("lin", "log"):
        raise ValueError(f"grid axis {text!r}: spacing {spacing!r} is not valid{_closest(spacing, ('lin', 'log'))}; "
                         "use 'lin' or 'log'")
    vals = []
    for label, s in (("START", s0), ("STOP", s1)):
        try:
            vals.append(float(s))
        except ValueError:
            raise ValueError(f"grid axis {text!r}: {label} = {s!r} is not a number; write e.g. 1e-6") from None
    try:
        n = int(sn)
    except ValueError:
        raise ValueError(f"grid axis {text!r}: N = {sn!r} must be a positive integer (number of points), e.g. 50") from None
    return Axis(name, spacing, vals[0], vals[1], n)


@dataclass(frozen=True)
class Grid:
    """A regular grid of 1-3 :class:`Axis` (points in flat C order: the last axis runs fastest)."""

    axes: tuple

    def __init__(self, axes):
        axes = tuple(parse_axis(a) if isinstance(a, str) else a for a in axes)
        if not 1 <= len(axes) <= 3:
            raise ValueError(f"a scan grid has 1 to 3 axes, got {len(axes)}; fix or profile the other parameters")
        names = [a.name for a in axes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"grid axis names must be distinct; {dup} appear more than once")
        object.__setattr__(self, "axes", axes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.n for a in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def values(self) -> dict[str, np.ndarray]:
        return {a.name: a.values for a in self.axes}

    def points(self, flat_index) -> np.ndarray:
        """Parameter values (len(flat_index), n_axes) of the points with these flat indices."""
        idx = np.unravel_index(np.asarray(flat_index), self.shape)
        return np.stack([a.values[i] for a, i in zip(self.axes, idx)], axis=-1)

    def to_json(self) -> list:
        return [a.to_json() for a in self.axes]

    @classmethod
    def from_json(cls, data) -> Grid:
        return cls([Axis(**d) for d in data])


# ------------------------------------------------------------------------------------------- result
@dataclass
class ScanResult:
    """Chi^2 over a :class:`Grid` with the profiled nuisances (NumPy arrays shaped like the grid).

    ``chi2`` is what is compared (profiled or marginalised -2 ln L); ``chi2_parts`` keeps the terms
    of a vector objective (last axis ``part``); ``nuisances[name]`` the profiled values;
    ``newton_decrement`` the predicted remaining decrease of chi^2 at each point (0 unprofiled).
    """

    grid: Grid
    chi2: np.ndarray
    nuisances: dict = field(default_factory=dict)
    newton_decrement: np.ndarray | None = None
    chi2_parts: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)
    tol: float = 1e-4

    @property
    def delta_chi2(self) -> np.ndarray:
        return self.chi2 - np.nanmin(self.chi2)

    @property
    def converged(self) -> np.ndarray:
        if self.newton_decrement is None:
            return np.isfinite(self.chi2)
        return np.isfinite(self.chi2) & (self.newton_decrement < self.tol)

    def best_fit(self) -> dict:
        """Grid parameters and nuisances at the grid point of smallest chi^2, with ``chi2``."""
        i = np.unravel_index(int(np.nanargmin(self.chi2)), self.chi2.shape)
        out = {a.name: float(a.values[j]) for a, j in zip(self.grid.axes, i)}
        out.update({k: float(v[i]) for k, v in self.nuisances.items()})
        out["chi2"] = float(self.chi2[i])
        return out

    def to_dataset(self):
        """An ``xarray.Dataset``: chi2, delta_chi2, nuisances, newton_decrement, converged; axes as coords."""
        import xarray as xr

        from cevnsjax.reporting import parameter_unit

        units = self.attrs.get("parameter_units") or {}
        units = json.loads(units) if isinstance(units, str) else dict(units)
        unit = lambda n: units.get(n) or parameter_unit(n) or "unknown"  # noqa: E731
        dims = self.grid.names
        coords = {a.name: (a.name, a.values, dict(spacing=a.spacing, long_name=f"{a.name} ({a.spacing} grid axis)",
                                                   units=unit(a.name))) for a in self.grid.axes}
        data = {"chi2": (dims, self.chi2, dict(long_name="-2 ln L (profiled)", units="1")),
                "delta_chi2": (dims, self.delta_chi2, dict(long_name="chi2 - min over the grid", units="1"))}
        for k, v in self.nuisances.items():
            data[k] = (dims, v, dict(long_name=f"profiled {k}", units=unit(k)))
        if self.newton_decrement is not None:
            data["newton_decrement"] = (dims, self.newton_decrement,
                                        dict(long_name="Newton decrement g^T H^-1 g of chi2 at the point", units="1"))
        data["converged"] = (dims, self.converged.astype(np.int8),
                             dict(long_name="converged (1) or not (0)", units="1"))
        if self.chi2_parts is not None:
            data["chi2_parts"] = (dims + ("part",), self.chi2_parts, dict(long_name="terms of chi2", units="1"))
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.attrs.items()}  # read back from netCDF
        attrs = {k: (json.dumps(v) if not isinstance(v, (str, int, float)) else v) for k, v in attrs.items()}
        attrs["grid"] = json.dumps(self.grid.to_json())
        attrs["nuisance_names"] = json.dumps(list(self.nuisances))
        attrs["tol"] = self.tol
        from cevnsjax import __version__

        attrs.update(cevnsjax_kind="ScanResult", cevnsjax_version=str(__version__))
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def save(self, path) -> Path:
        """netCDF (``.nc``, via xarray + h5netcdf) or ``.npz`` (NumPy only)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix == ".npz":
            with open(tmp, "wb") as fh:
                np.savez(fh, **_result_arrays(self))
        else:
            self.to_dataset().to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dataset(cls, ds) -> ScanResult:
        grid = Grid.from_json(json.loads(ds.attrs["grid"]))
        names = json.loads(ds.attrs.get("nuisance_names", "[]"))
        attrs = {k: v for k, v in ds.attrs.items()
                 if k not in ("grid", "nuisance_names", "tol", "cevnsjax_kind", "cevnsjax_version")}
        return cls(grid=grid, chi2=np.asarray(ds["chi2"].values),
                   nuisances={k: np.asarray(ds[k].values) for k in names},
                   newton_decrement=np.asarray(ds["newton_decrement"].values) if "newton_decrement" in ds else None,
                   chi2_parts=np.asarray(ds["chi2_parts"].values) if "chi2_parts" in ds else None,
                   attrs=attrs, tol=float(ds.attrs.get("tol", 1e-4)))


def _result_arrays(r: ScanResult) -> dict:
    out = {"chi2": r.chi2, "grid": np.array(json.dumps(r.grid.to_json())), "attrs": np.array(json.dumps(r.attrs, default=str)),
           "tol": np.array(r.tol), "nuisance_names": np.array(json.dumps(list(r.nuisances)))}
    out.update({f"nu:{k}": v for k, v in r.nuisances.items()})
    if r.newton_decrement is not None:
        out["newton_decrement"] = r.newton_decrement
    if r.chi2_parts is not None:
        out["chi2_parts"] = r.chi2_parts
    return out


def load_scan(path) -> ScanResult:
    """Read a result written by :meth:`ScanResult.save` (``.nc`` or ``.npz``)."""
    path = Path(path)
    if path.suffix == ".npz":
        z = np.load(path)
        names = json.loads(str(z["nuisance_names"]))
        return ScanResult(grid=Grid.from_json(json.loads(str(z["grid"]))), chi2=z["chi2"],
                          nuisances={k: z[f"nu:{k}"] for k in names},
                          newton_decrement=z["newton_decrement"] if "newton_decrement" in z else None,
                          chi2_parts=z["chi2_parts"] if "chi2_parts" in z else None,
                          attrs=json.loads(str(z["attrs"])), tol=float(z["tol"]))
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ScanResult.from_dataset(ds.load())


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
        _check_name(name, valid_names, "nuisance")
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


def run_scan(objective: Callable, grid: Grid | Sequence, *, fixed: Mapping | None = None,
             profile: Mapping | None = None, chunk_size: int = 4096, out_dir=None, resume: bool = True,
             devices=None, progress: bool = True, dtype=None, fingerprint: str | None = None,
             nuisance_mode: str = "profile", newton_iters: int = 10, coarse_iters: int = 40, newton_tol: float = 0.0,
             coarse_points: int = 12, tol: float = 1e-4, valid_names: Sequence[str] | None = None,
             process_index: int | None = None, process_count: int | None = None,
             on_chunk: Callable | None = None, wait_timeout_s: float = 24 * 3600,
             chunks: Sequence[int] | None = None, assemble: bool = True) -> ScanResult | None:
    """Delta chi^2 of ``objective`` over ``grid`` (see the module docstring).

    Args:
        objective: jittable ``values -> -2 ln L`` (scalar or vector of terms); ``values`` maps the
            grid names, the ``fixed`` names and the ``profile`` names to scalars of ``dtype``.
        grid: a :class:`Grid` or a list of axes (``Axis`` or ``"NAME=lin|log:START:STOP:N"``).
        fixed: name -> value passed unchanged at every point.
        profile: name -> (start, lo, hi) nuisances minimised at every point (None = open bound).
        chunk_size: points per chunk (rounded up to a multiple of the device count); sets memory.
        out_dir: folder for the manifest, chunk files and ``scan.nc``; None keeps all in memory.
        resume: reuse finished chunks in ``out_dir`` (False deletes them first).
        devices: devices to shard each chunk over (default: this process's local devices).
        dtype: float64 (default when x64 is on) or float32.
        fingerprint: a string identifying the objective (spec, data, code version); stored in the
            manifest so that resuming with another objective is refused.
        nuisance_mode: 'profile' or 'marginal' (Laplace approximation, see the module docstring).
        newton_tol: stop a point's Newton iterations early once a step lowers chi^2 by < newton_tol
            (0: always ``newton_iters``); a chunk stops when all its points have.
        newton_iters / coarse_iters: Newton iterations per point from the warm start / on the
            coarse sub-grid (``coarse_points`` per axis) from ``start``.
        tol: ``converged`` when the Newton decrement (predicted chi^2 decrease) is below this.
        valid_names: known parameter names; unknown grid, fixed or profile names raise.
        process_index / process_count: this process's share of the chunks (default from JAX).
        on_chunk: called as ``on_chunk(k, n_chunks)`` after chunk ``k`` is written.
        chunks: compute only these chunk indices (flat C order, ``chunk`` points each) instead of this
            process's share; with ``assemble=False`` the call returns None once they are written (the
            hook of cevnsjax.stats.distributed: one Dask task per group of chunks).
    """
    t_start = time.perf_counter()
    grid = grid if isinstance(grid, Grid) else Grid(grid)
    fixed = dict(fixed or {})
    for n in list(grid.names) + list(fixed):
        _check_name(n, valid_names)
    for n in fixed:
        if n in grid.names:
            raise ValueError(f"{n!r} is both a grid axis and fixed; drop it from one of them")
    prof = _normalise_profile(profile, grid, fixed, valid_names)
    if nuisance_mode not in ("profile", "marginal"):
        raise ValueError(f"nuisance_mode={nuisance_mode!r}; use 'profile' or 'marginal'")
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

    def values_of(xg, nu):
        v = dict(fixed_c)
        v.update({n: xg[i] for i, n in enumerate(axis_names)})
        v.update({n: nu[j] for j, n in enumerate(names_nu)})
        return v

    out_struct = jax.eval_shape(lambda: objective(values_of(jnp.ones(len(axis_names), dtype), jnp.asarray(x0))))
    if len(out_struct.shape) > 1:
        raise ValueError(f"objective returns shape {out_struct.shape}; it must return a scalar -2 ln L or a vector of terms")
    n_parts = out_struct.shape[0] if out_struct.shape else 0

    def point(xg, nu0, n_iter):
        f_parts = lambda nu: jnp.asarray(objective(values_of(xg, nu)), dtype)
        f = lambda nu: jnp.sum(f_parts(nu))
        if not n_nu:
            parts = f_parts(nu0)
            return jnp.sum(parts), parts, nu0, jnp.zeros((), dtype)
        nu, fx, dec, H, free, _ = newton(f, nu0, lo, hi, n_iter, tol=newton_tol)
        parts = f_parts(nu)
        chi2 = jnp.sum(parts)
        if nuisance_mode == "marginal":
            sign, logdet = jnp.linalg.slogdet(0.5 * H)  # fixed (at-bound) rows are identity: 0.5 -> ln 0.5 each
            nfree = jnp.sum(free)
            logdet = logdet - (n_nu - nfree) * jnp.log(0.5)
            chi2 = jnp.where(sign > 0, chi2 + logdet - nfree * math.log(2 * math.pi), jnp.nan)
        return chi2, parts, nu, dec

    mesh = jax.sharding.Mesh(np.array(devices), ("points",))
    sh = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("points"))
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    batched = jax.jit(jax.vmap(point, in_axes=(0, 0, None)), in_shardings=(sh, sh, rep), out_shardings=sh)

    def run_points(flat_idx, init, iters):
        """Synchronously solve points (any count) in chunks; returns numpy arrays."""
        chunk = int(math.ceil(min(chunk_size, flat_idx.size) / nd) * nd)
        res = []
        for s in range(0, flat_idx.size, chunk):
            fi = flat_idx[s:s + chunk]
            m = fi.size
            xg = grid.points(fi).astype(dtype)
            ini = init[s:s + chunk]
            if m < chunk:
                xg = np.concatenate([xg, np.repeat(xg[-1:], chunk - m, 0)])
                ini = np.concatenate([ini, np.repeat(ini[-1:], chunk - m, 0)])
            out = batched(jax.device_put(xg, sh), jax.device_put(np.asarray(ini, dtype), sh), jnp.asarray(iters, jnp.int32))
            res.append([np.asarray(o)[:m] for o in out])
        return [np.concatenate([r[i] for r in res]) for i in range(4)]

    # ---------------------------------------------------------------------- manifest and resume
    manifest = dict(version=MANIFEST_VERSION, grid=grid.to_json(), fixed={k: _jsonable(v) for k, v in fixed.items()},
                    profile={k: [v[0], v[1] if np.isfinite(v[1]) else None, v[2] if np.isfinite(v[2]) else None]
                             for k, v in prof.items()},
                    fingerprint=fingerprint if fingerprint is not None else
                    f"{getattr(objective, '__module__', '?')}.{getattr(objective, '__qualname__', repr(objective))}",
                    chunk=chunk, dtype=dtype.name, nuisance_mode=nuisance_mode, newton_iters=int(newton_iters),
                    **({"newton_tol": float(newton_tol)} if newton_tol else {}),
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
        arrs = dict(chi2=np.asarray(outs[0])[:m], parts=np.asarray(outs[1])[:m], nu=np.asarray(outs[2])[:m],
                    dec=np.asarray(outs[3])[:m])
        if chunk_dir is not None:
            _atomic_savez(chunk_path(k), **arrs)
        else:
            results[k] = arrs
        bar.update(m)
        if on_chunk is not None:
            on_chunk(k, n_chunks)

    if todo:  # compile before the clock starts (one executable for every chunk)
        z = jax.ShapeDtypeStruct((chunk, len(axis_names)), dtype, sharding=sh)
        zi = jax.ShapeDtypeStruct((chunk, n_nu), dtype, sharding=sh)
        batched.lower(z, zi, jnp.asarray(newton_iters, jnp.int32)).compile()
    pending = None
    t_run = time.perf_counter()
    n_computed = 0
    for k in todo:
        fi = np.arange(k * chunk, min((k + 1) * chunk, grid.size))
        m = fi.size
        xg = grid.points(fi).astype(dtype)
        ini = warm_start(fi).astype(dtype).reshape(m, n_nu)
        if m < chunk:
            xg = np.concatenate([xg, np.repeat(xg[-1:], chunk - m, 0)])
            ini = np.concatenate([ini, np.repeat(ini[-1:], chunk - m, 0)])
        outs = batched(jax.device_put(xg, sh), jax.device_put(ini, sh), jnp.asarray(newton_iters, jnp.int32))
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
            raise ValueError(f"{n!r} is not an axis of this scan{_closest(n, names)}; axes: {names}")
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
