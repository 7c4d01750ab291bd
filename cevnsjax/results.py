"""The result family of cevnsjax, one netCDF writer (:func:`_write_nc`) and one reader (:func:`load`, which
dispatches on the ``cevnsjax_kind`` attribute): :class:`FitResult`, :class:`ProfileResult`,
:class:`ScanResult` (over a :class:`cevnsjax.stats.grid.Grid`), :class:`PosteriorResult` and the
unfolding records (:class:`ArrayRecord`: :class:`BetaScan`, :class:`UnfoldingResult`, and the
``UnfoldingProblem`` of :mod:`cevnsjax.stats.unfold`).

Posterior results: NumPyro samples with diagnostics, ArviZ InferenceData, plots and files.

A :class:`PosteriorResult` holds the groups of an ArviZ ``InferenceData`` as plain NumPy arrays
(``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data``, ``prior``,
``prior_predictive``, ``posterior_predictive``; sampled arrays are shaped (chain, draw, ...)).
ArviZ and matplotlib are imported only inside the functions that need them, so sampling, the
convergence check (rank-normalised split R-hat and bulk ESS, Vehtari et al. 2021, computed with
``numpyro.diagnostics``) and ``save("x.npz")`` work on machines without ArviZ. ``save("x.nc")``,
``summary()``, ``idata`` and the plots need ArviZ / matplotlib.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cevnsjax.stats.grid import Grid

__all__ = ["PosteriorResult", "FitResult", "ProfileResult", "ScanResult", "load_scan", "ArrayRecord", "BetaScan",
           "UnfoldingResult", "load", "rank_diagnostics"]

GROUPS = ("posterior", "sample_stats", "log_likelihood", "observed_data", "prior", "prior_predictive",
          "posterior_predictive")
_ATTR_KEY = "cevnsjax_attrs"


def _split_chains(x):
    """(C, D, ...) -> (2C, D//2, ...), dropping the middle draw when D is odd."""
    d = x.shape[1] // 2
    return np.concatenate([x[:, :d], x[:, x.shape[1] - d:]], axis=0)


def _z_scale(x):
    from scipy.special import ndtri
    from scipy.stats import rankdata

    r = rankdata(x.reshape(x.shape[0] * x.shape[1], -1), axis=0, method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.shape[0] * x.shape[1] + 0.25))


def rank_diagnostics(x) -> tuple:
    """Rank-normalised split R-hat (max of bulk and folded) and bulk ESS of draws ``x`` (chain, draw, ...).

    Elementwise over trailing dims: ``arviz.rhat`` / ``arviz.ess(method="bulk")`` when ArviZ is
    installed (imported here, lazily), else the same definitions on ``numpyro.diagnostics``.
    """
    x = np.asarray(x, float)
    if x.ndim < 2 or x.shape[1] < 4:
        raise ValueError(f"need draws shaped (chain, draw >= 4, ...), got {x.shape}")
    try:
        import arviz as az
    except ImportError:
        return _rank_diagnostics_numpyro(x)
    const = np.ptp(x.reshape(-1, *x.shape[2:]), axis=0) == 0
    ds = az.convert_to_dataset(x)
    rhat = np.asarray(az.rhat(ds)["x"].values, float)
    ess = np.asarray(az.ess(ds, method="bulk")["x"].values, float)
    return np.where(const, 1.0, rhat), np.where(const, float(x.shape[0] * x.shape[1]), ess)


def _rank_diagnostics_numpyro(x) -> tuple:
    """:func:`rank_diagnostics` without ArviZ (numpyro.diagnostics on rank-normalised split chains)."""
    from numpyro.diagnostics import effective_sample_size, gelman_rubin

    xs = _split_chains(x)
    zb = _z_scale(xs)
    zf = _z_scale(np.abs(xs - np.median(xs, axis=(0, 1))))
    const = np.ptp(xs.reshape(-1, *xs.shape[2:]), axis=0) == 0
    rhat = np.maximum(gelman_rubin(zb), gelman_rubin(zf))
    ess = effective_sample_size(zb)
    rhat = np.where(const, 1.0, rhat)
    ess = np.where(const, float(x.shape[0] * x.shape[1]), ess)
    return rhat, ess


def flat_samples(samples: Mapping[str, np.ndarray], names) -> tuple:
    """(labels, matrix (n_samples, n_labels)) of the scalar elements of ``names``."""
    labels, cols = [], []
    for n in names:
        a = np.asarray(samples[n])
        a = a.reshape(a.shape[0] * a.shape[1], -1)
        shape = np.asarray(samples[n]).shape[2:]
        for j, idx in enumerate(np.ndindex(*shape) if shape else [()]):
            labels.append(n if not idx else f"{n}[{','.join(map(str, idx))}]")
            cols.append(a[:, j])
    return labels, np.stack(cols, -1)


class PosteriorResult:
    """Posterior samples and the groups around them (see module docstring).

    ``converged`` is True when every latent site has rank-normalised R-hat < ``rhat_max`` (1.01),
    bulk ESS > ``ess_min`` (default ``ess_per_chain x chains`` = 100 per chain), and there are no
    divergent transitions. Thresholds are settable attributes.
    """

    def __init__(self, groups: Mapping[str, Mapping[str, np.ndarray]], attrs: Mapping | None = None,
                 *, rhat_max: float = 1.01, ess_per_chain: float = 100.0, ess_min: float | None = None):
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown group(s) {unknown}; valid groups: {list(GROUPS)}")
        self.groups = {g: {k: np.asarray(v) for k, v in groups.get(g, {}).items()} for g in GROUPS}
        self.attrs = dict(attrs or {})
        self.rhat_max = rhat_max
        self.ess_per_chain = ess_per_chain
        self.ess_min = ess_min
        self._idata = None

    # ------------------------------------------------------------------ access
    @property
    def posterior(self) -> dict:
        return self.groups["posterior"]

    @property
    def latent_sites(self) -> tuple:
        return tuple(self.attrs.get("latent_sites", tuple(self.posterior)))

    @property
    def observed_sites(self) -> tuple:
        return tuple(self.attrs.get("observed_sites", tuple(self.groups["observed_data"])))

    @property
    def num_chains(self) -> int:
        return next(iter(self.posterior.values())).shape[0]

    @property
    def num_draws(self) -> int:
        return next(iter(self.posterior.values())).shape[1]

    @property
    def num_divergences(self) -> int:
        d = self.groups["sample_stats"].get("diverging")
        return 0 if d is None else int(np.sum(d))

    def _check_vars(self, var_names, group="posterior"):
        valid = list(self.groups[group])
        if var_names is None:
            return list(self.latent_sites) if group == "posterior" else valid
        var_names = [var_names] if isinstance(var_names, str) else list(var_names)
        bad = [v for v in var_names if v not in valid]
        if bad:
            raise ValueError(f"unknown variable(s) {bad} in group {group!r}; valid choices: {valid}")
        return var_names

    def samples(self, var_names=None, flat: bool = True) -> dict:
        """Posterior draws, chains merged (``flat=True``: (chain*draw, ...))."""
        names = self._check_vars(var_names)
        out = {}
        for n in names:
            a = self.posterior[n]
            out[n] = a.reshape((-1,) + a.shape[2:]) if flat else a
        return out

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self, var_names=None) -> dict:
        """name -> (r_hat, ess_bulk) arrays (elementwise) for latent sites."""
        return {n: rank_diagnostics(self.posterior[n]) for n in self._check_vars(var_names)}

    @property
    def converged(self) -> bool:
        ess_min = self.ess_min if self.ess_min is not None else self.ess_per_chain * self.num_chains
        if self.num_divergences > 0:
            return False
        for rhat, ess in self.diagnostics().values():
            if not (np.all(rhat < self.rhat_max) and np.all(ess > ess_min)):
                return False
        return True

    def convergence_report(self) -> str:
        ess_min = self.ess_min if self.ess_min is not None else self.ess_per_chain * self.num_chains
        lines = [f"divergences: {self.num_divergences}; thresholds r_hat < {self.rhat_max}, ess_bulk > {ess_min:g}"]
        for n, (rhat, ess) in self.diagnostics().items():
            lines.append(f"  {n:<24s} r_hat max {np.max(rhat):.4f}  ess_bulk min {np.min(ess):.0f}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ arviz
    @property
    def idata(self):
        """ArviZ ``InferenceData`` (built on first use; needs arviz)."""
        if self._idata is None:
            self._idata = self.to_inference_data()
        return self._idata

    def set_observed_coords(self, coords: Mapping) -> None:
        """Name the bin dimensions of observed sites and give them coordinates (kept in ``attrs``,
        so saved files keep them). ``coords``: site -> ``{dim: bin centres, ...}`` (one entry per
        axis, in order), or site -> ``{"dims": [...], "coords": {...}, "units": {dim: unit},
        "values_units": ..., "long_name": ...}`` as :meth:`cevnsjax.stats.model.JointModel.observed_coords`
        gives."""
        cur = dict(self.attrs.get("observed_coords") or {})
        for site, c in dict(coords).items():
            c = dict(c) if "dims" in c else {"dims": list(c), "coords": dict(c)}
            c["coords"] = {d: np.asarray(v, float).tolist() for d, v in c["coords"].items()}
            obs = self.groups["observed_data"].get(site)
            shape = tuple(len(c["coords"][d]) for d in c["dims"])
            if obs is not None and np.shape(obs) != shape:
                raise ValueError(f"coords of {site!r} give shape {shape}; the site has shape {np.shape(obs)}")
            cur[site] = c
        self.attrs["observed_coords"] = cur
        self._idata = None

    def to_inference_data(self, coords: Mapping | None = None):
        """ArviZ ``InferenceData``: observed, log-likelihood and predictive sites with named bin dims
        (the observable's kind with bin-centre coordinates where known, see :meth:`set_observed_coords`;
        else ``<site>_bin``), ``units`` / ``long_name`` attributes on the variables and
        ``cevnsjax_version`` (and ``spec``, when the CLI set it) on every group."""
        import arviz as az

        if coords is not None:
            self.set_observed_coords(coords)
        known = dict(self.attrs.get("observed_coords") or {})
        dims, crd = {}, {}
        for site in self.observed_sites:
            obs = self.groups["observed_data"].get(site)
            if obs is None:
                continue
            if site in known:
                dims[site] = list(known[site]["dims"])
                crd.update({d: np.asarray(v) for d, v in known[site]["coords"].items()})
            else:
                nd = np.ndim(obs)
                dims[site] = [f"{site}_bin"] if nd == 1 else [f"{site}_bin_{i}" for i in range(nd)]
        kw = {g: (v or None) for g, v in self.groups.items()}
        attrs = {_ATTR_KEY: json.dumps({k: v for k, v in self.attrs.items() if k != "spec"}, default=_jsonable),
                 "cevnsjax_version": _version()}  # the spec text once, as its own attribute
        if "spec" in self.attrs:
            attrs["spec"] = str(self.attrs["spec"])
        idata = az.from_dict(**kw, dims=dims, coords=crd or None, attrs=attrs)
        self._label_variables(idata, known, attrs)
        return idata

    def _label_variables(self, idata, known: Mapping, attrs: Mapping) -> None:
        """``units`` and ``long_name`` attributes of the variables and bin coordinates of ``idata``,
        ``attrs`` on every group."""
        punits = dict(self.attrs.get("parameter_units") or {})
        stats = {"diverging": ("divergent transition", "1"), "lp": ("log posterior density", "1"),
                 "n_steps": ("leapfrog steps", "1"), "tree_depth": ("NUTS tree depth", "1"),
                 "acceptance_rate": ("mean acceptance probability", "1"), "step_size": ("leapfrog step size", "1")}
        for g in idata.groups():
            ds = getattr(idata, g)
            ds.attrs.update(attrs)
            for k in ds.data_vars:
                a = ds[k].attrs
                info = known.get(k, {})
                if g in ("posterior", "prior"):
                    a["long_name"] = f"{k} ({g} draws)"
                    if punits.get(k):
                        a["units"] = punits[k]
                elif g == "sample_stats" and k in stats:
                    a["long_name"], a["units"] = stats[k]
                elif g == "log_likelihood":
                    a.update(long_name=f"pointwise log-likelihood of {k} per bin (natural log)", units="1")
                elif g in ("observed_data", "posterior_predictive", "prior_predictive"):
                    a["long_name"] = info.get("long_name", f"{k} per bin") + ("" if g == "observed_data" else f" ({g})")
                    a["units"] = info.get("values_units", "counts")
            for info in known.values():
                for d in info["dims"]:
                    if d in ds.coords:
                        ds[d].attrs.update(long_name=f"bin centre of {d}", units=info.get("units", {}).get(d, ""))

    @classmethod
    def from_inference_data(cls, idata, **kw) -> PosteriorResult:
        groups, attrs = {}, {}
        for g in GROUPS:
            if g in idata.groups():
                ds = getattr(idata, g)
                groups[g] = {k: np.asarray(ds[k].values) for k in ds.data_vars}
                if _ATTR_KEY in ds.attrs and not attrs:
                    attrs = json.loads(ds.attrs[_ATTR_KEY])
                    if "spec" in ds.attrs:
                        attrs["spec"] = str(ds.attrs["spec"])
        out = cls(groups, attrs, **kw)
        out._idata = idata
        return out

    def summary(self, var_names=None, **kwargs):
        """``arviz.summary`` table (pandas DataFrame) of the latent sites (or ``var_names``)."""
        import arviz as az

        return az.summary(self.idata, var_names=self._check_vars(var_names), **kwargs)

    # ------------------------------------------------------------------ files
    def save(self, path, coords: Mapping | None = None) -> str:
        """Write to ``path``: ``.nc`` -> netCDF via ArviZ (h5netcdf), ``.npz`` -> NumPy (no ArviZ needed).
        ``coords``: bin coordinates of the observed sites (:meth:`set_observed_coords`)."""
        if coords is not None:
            self.set_observed_coords(coords)
        path = str(path)
        if path.endswith(".npz"):
            arrays = {f"{g}::{k}": v for g, d in self.groups.items() for k, v in d.items()}
            arrays["__attrs__"] = np.asarray(json.dumps(self.attrs, default=_jsonable))
            np.savez_compressed(path, **arrays)
        elif path.endswith((".nc", ".netcdf", ".h5")):
            self.idata.to_netcdf(path)
        else:
            raise ValueError(f"unknown file type of {path!r}; valid suffixes: .nc (netCDF, ArviZ), .npz (NumPy)")
        return path

    @classmethod
    def load(cls, path, **kw) -> PosteriorResult:
        path = str(path)
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                attrs = json.loads(str(z["__attrs__"]))
                groups: dict = {}
                for key in z.files:
                    if key == "__attrs__":
                        continue
                    g, name = key.split("::", 1)
                    groups.setdefault(g, {})[name] = z[key]
            return cls(groups, attrs, **kw)
        import arviz as az

        return cls.from_inference_data(az.from_netcdf(path), **kw)

    # ------------------------------------------------------------------ plots (cevnsjax.plots)
    def plot_corner(self, path=None, **kwargs):
        """Corner plot of the posterior: :func:`cevnsjax.plots.plot_corner`."""
        from cevnsjax.plots import plot_corner

        return plot_corner(self, path, **kwargs)

    def plot_spectrum(self, path=None, edges=None, observed_site: str | None = None, **kwargs):
        """Posterior-predictive spectrum: :func:`cevnsjax.plots.plot_spectrum`."""
        from cevnsjax.plots import plot_spectrum

        return plot_spectrum(self, path, edges, observed_site, **kwargs)

    def __repr__(self) -> str:
        return (f"PosteriorResult({self.num_chains} chains x {self.num_draws} draws, latent {list(self.latent_sites)}, "
                f"observed {list(self.observed_sites)}, divergences {self.num_divergences})")


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ------------------------------------------------------------------------------ fits and profiles
def _version() -> str:
    from cevnsjax import __version__

    return str(__version__)


def _write_nc(ds, path, kind: str, engine: str | None = None) -> str:
    """The one netCDF writer of every result: each variable named and with units (dimensionless where
    none is given), ``cevnsjax_kind`` (what :func:`load` dispatches on) and the package version."""
    for k in ds.data_vars:
        ds[k].attrs.setdefault("long_name", k.replace("_", " "))
        ds[k].attrs.setdefault("units", "1")
    ds.attrs.update(cevnsjax_kind=kind, cevnsjax_version=_version())
    ds.to_netcdf(path, engine=engine)
    return str(path)


def _read_nc(path, kind: str):
    import xarray as xr

    with xr.open_dataset(path) as ds:
        ds = ds.load()
    if ds.attrs.get("cevnsjax_kind") != kind:
        raise ValueError(f"{path} holds a {ds.attrs.get('cevnsjax_kind')!r}, not a {kind}; use cevnsjax.results.load")
    return ds


@dataclass
class FitResult:
    """Maximum-likelihood fit (objective -2 ln L).

    Attributes:
        names: flat parameter names (``"a"``, ``"v[0]"``, ...) in the order of ``values``.
        values: best-fit values (flat). ``free``: which were fitted (the others held fixed).
        minus2lnL: -2 ln L at the best fit.
        covariance: (H/2)^-1 over the free parameters (``free_names`` order), H the Hessian of
            -2 ln L; NaN where H is not positive definite.
        converged: finite -2 ln L, Newton decrement below tolerance, covariance defined (or a bound hit).
        n_iter: Newton iterations of the best start; ``decrement``: g^T H^-1 g there.
        start_minus2lnL: final -2 ln L of every start (spread = multi-modality diagnostic).
    """

    names: tuple
    values: np.ndarray
    free: tuple
    minus2lnL: float
    covariance: np.ndarray
    converged: bool
    n_iter: int
    decrement: float
    start_minus2lnL: np.ndarray
    message: str = ""
    keys: tuple = ()
    shapes: tuple = ()

    @property
    def free_names(self) -> tuple:
        return tuple(n for n, f in zip(self.names, self.free) if f)

    @property
    def n_free(self) -> int:
        return int(sum(self.free))

    @property
    def params(self) -> dict:
        """Best fit as a dict shaped like the initial parameters."""
        from cevnsjax.stats.optimize import Layout

        keys = tuple(self.keys) or tuple(self.names)
        shapes = tuple(tuple(s) for s in self.shapes) or ((),) * len(keys)
        return Layout(keys, shapes).unravel_np(self.values)

    @property
    def best_fit(self) -> dict:
        """Best fit as flat name -> float."""
        return dict(zip(self.names, map(float, self.values)))

    @property
    def errors(self) -> dict:
        """1 sigma errors sqrt(diag (H/2)^-1) of the free parameters."""
        d = np.sqrt(np.diag(self.covariance)) if self.covariance.size else np.zeros(0)
        return dict(zip(self.free_names, map(float, d)))

    @property
    def correlation(self) -> np.ndarray:
        d = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(d, d)

    def __repr__(self) -> str:
        err = self.errors
        rows = [f"  {n:<24s} {v: .6g}" + (f" +- {err[n]:.3g}" if n in err else "  (fixed)")
                for n, v in zip(self.names, self.values)]
        return (f"FitResult(-2lnL={self.minus2lnL:.6g}, converged={self.converged}, n_iter={self.n_iter}"
                f"{', ' + self.message if self.message else ''})\n" + "\n".join(rows))

    def to_dataset(self):
        import xarray as xr

        fn = list(self.free_names)
        ds = xr.Dataset(
            {"value": ("param", np.asarray(self.values, float),
                       {"long_name": "best-fit value", "units": "per parameter (see fit.json / the spec)"}),
             "free": ("param", np.asarray(self.free, np.int8), {"long_name": "fitted (1) or held fixed (0)"}),
             "covariance": (("free_param", "free_param_2"), np.asarray(self.covariance, float),
                            {"long_name": "(H/2)^-1, H = Hessian of -2 ln L",
                             "units": "product of the two parameters' units"}),
             "start_minus2lnL": ("start", np.asarray(self.start_minus2lnL, float), {"units": "1"})},
            coords={"param": list(self.names), "free_param": fn, "free_param_2": fn})
        ds.attrs.update(minus2lnL=float(self.minus2lnL), converged=int(self.converged), n_iter=int(self.n_iter),
                        decrement=float(self.decrement), message=self.message, keys=json.dumps(list(self.keys)),
                        shapes=json.dumps([list(s) for s in self.shapes]))
        return ds

    def save(self, path, attrs: Mapping | None = None) -> str:
        """Write as netCDF (``cevnsjax.results.load`` reads it back); ``attrs`` (str/number values,
        e.g. ``spec``) are added to the file's attributes."""
        ds = self.to_dataset()
        ds.attrs.update(dict(attrs or {}))
        return _write_nc(ds, path, "FitResult")

    @classmethod
    def from_dataset(cls, ds) -> FitResult:
        a = ds.attrs
        return cls(names=tuple(str(n) for n in ds["param"].values), values=np.asarray(ds["value"].values, float),
                   free=tuple(bool(f) for f in ds["free"].values), minus2lnL=float(a["minus2lnL"]),
                   covariance=np.asarray(ds["covariance"].values, float), converged=bool(a["converged"]),
                   n_iter=int(a["n_iter"]), decrement=float(a["decrement"]),
                   start_minus2lnL=np.asarray(ds["start_minus2lnL"].values, float), message=str(a.get("message", "")),
                   keys=tuple(json.loads(a["keys"])), shapes=tuple(tuple(s) for s in json.loads(a["shapes"])))

    @classmethod
    def load(cls, path) -> FitResult:
        return cls.from_dataset(_read_nc(path, "FitResult"))


@dataclass
class ProfileResult:
    """Profile likelihood at points of ``names``.

    ``values``: the profiled points, (G,) for one name or (G, k) for k names; ``minus2lnL`` (G,) the
    profiled -2 ln L; ``delta_chi2 = minus2lnL - minus2lnL_min`` with ``minus2lnL_min`` the smaller
    of the global fit and the profile minimum; ``nuisance`` (G, m) the re-fitted ``nuisance_names``.
    """

    names: tuple
    values: np.ndarray
    minus2lnL: np.ndarray
    minus2lnL_min: float
    converged: np.ndarray
    nuisance_names: tuple
    nuisance: np.ndarray

    @property
    def delta_chi2(self) -> np.ndarray:
        return self.minus2lnL - self.minus2lnL_min

    @property
    def points(self) -> np.ndarray:
        """(G, k) profiled points."""
        return np.asarray(self.values, float).reshape(len(self.minus2lnL), len(self.names))

    @property
    def best_fit(self) -> dict:
        """name -> (G,) array: the profiled names and the re-fitted nuisances at each point."""
        out = {n: self.points[:, j] for j, n in enumerate(self.names)}
        out.update({n: self.nuisance[:, j] for j, n in enumerate(self.nuisance_names)})
        return out

    def minimum(self) -> dict:
        """The point with the smallest profiled -2 ln L."""
        i = int(np.nanargmin(self.minus2lnL))
        return {n: float(self.points[i, j]) for j, n in enumerate(self.names)}

    def interval(self, cl: float = 0.6827) -> tuple:
        """1-D interval where Delta chi^2 < chi2.ppf(cl, 1), by linear interpolation between points
        (sorted by value). An end that does not cross is returned as the grid edge."""
        from scipy import stats

        if len(self.names) != 1:
            raise ValueError(f"interval() needs a 1-D profile; this one is over {self.names}")
        o = np.argsort(self.points[:, 0])
        x, d = self.points[o, 0], self.delta_chi2[o]
        t = stats.chi2.ppf(cl, 1)
        i0 = int(np.nanargmin(d))
        lo = x[0]
        for i in range(i0, 0, -1):
            if d[i - 1] >= t:
                lo = x[i - 1] + (t - d[i - 1]) * (x[i] - x[i - 1]) / (d[i] - d[i - 1])
                break
        hi = x[-1]
        for i in range(i0, len(x) - 1):
            if d[i + 1] >= t:
                hi = x[i] + (t - d[i]) * (x[i + 1] - x[i]) / (d[i + 1] - d[i])
                break
        return float(lo), float(hi)

    def to_dataset(self):
        import xarray as xr

        ds = xr.Dataset(
            {"points": (("point", "name"), self.points, {"long_name": "profiled point", "units": "per parameter (name)"}),
             "minus2lnL": ("point", np.asarray(self.minus2lnL, float), {"long_name": "profiled -2 ln L"}),
             "converged": ("point", np.asarray(self.converged, np.int8)),
             "nuisance": (("point", "nuisance_name"), np.asarray(self.nuisance, float).reshape(len(self.minus2lnL), -1),
                          {"long_name": "re-fitted nuisance", "units": "per parameter (nuisance_name)"})},
            coords={"name": list(self.names), "nuisance_name": list(self.nuisance_names)})
        ds.attrs.update(minus2lnL_min=float(self.minus2lnL_min), ndim_values=int(np.ndim(self.values)))
        return ds

    def save(self, path) -> str:
        return _write_nc(self.to_dataset(), path, "ProfileResult")

    @classmethod
    def from_dataset(cls, ds) -> ProfileResult:
        pts = np.asarray(ds["points"].values, float)
        return cls(names=tuple(str(n) for n in ds["name"].values),
                   values=pts[:, 0] if int(ds.attrs["ndim_values"]) == 1 else pts,
                   minus2lnL=np.asarray(ds["minus2lnL"].values, float), minus2lnL_min=float(ds.attrs["minus2lnL_min"]),
                   converged=np.asarray(ds["converged"].values, bool),
                   nuisance_names=tuple(str(n) for n in ds["nuisance_name"].values),
                   nuisance=np.asarray(ds["nuisance"].values, float))

    @classmethod
    def load(cls, path) -> ProfileResult:
        return cls.from_dataset(_read_nc(path, "ProfileResult"))


# ------------------------------------------------------------------------------------ scans
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
        attrs.update(cevnsjax_kind="ScanResult", cevnsjax_version=_version())
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def save(self, path) -> Path:
        """netCDF (``.nc``, via xarray + h5netcdf) or ``.npz`` (NumPy only)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix == ".npz":
            with open(tmp, "wb") as fh:
                np.savez(fh, **_result_arrays(self))
        else:
            _write_nc(self.to_dataset(), tmp, "ScanResult", engine="h5netcdf")
        os.replace(tmp, path)  # atomic: a reader never sees half a file
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


# ------------------------------------------------------------------------- unfolding records
def _fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _is_array(v) -> bool:
    """NumPy or JAX arrays (not Python or NumPy scalars)."""
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic)


def _plain(v):
    """JSON-ready copy: arrays to lists, NumPy scalars to Python ones (dicts and sequences recursively)."""
    if _is_array(v):
        return np.asarray(v).tolist()
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


_RECORDS: dict[str, type] = {}


class ArrayRecord:
    """Base of frozen dataclasses of arrays and scalars (the unfolding problem, beta scan and result):
    ``save(path)`` as netCDF (the one writer of this module: ``cevnsjax_kind`` = the class name, the
    package version; :func:`load` dispatches on it) or NumPy ``.npz`` when the path ends in .npz;
    ``load(path)``; ``to_json()``. Array fields become variables, a nested record's fields
    ``<field>.<name>`` variables, the other fields one JSON ``meta`` attribute."""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _RECORDS[cls.__name__] = cls

    def _split(self):
        arrays, meta = {}, {}
        for k, v in _fields(self).items():
            if isinstance(v, ArrayRecord):
                arrays.update({f"{k}.{kk}": np.asarray(vv) for kk, vv in _fields(v).items()})
                meta[k] = {"__type__": type(v).__name__}
            elif _is_array(v):
                arrays[k] = np.asarray(v)
            else:
                meta[k] = v
        return arrays, meta

    def save(self, path) -> Path:
        path = Path(path)
        arrays, meta = self._split()
        if path.suffix == ".npz":
            np.savez(path, __meta__=json.dumps(_plain(meta)), **arrays)
            return path
        import xarray as xr

        ds = xr.Dataset({k: ([f"{k}_{i}" for i in range(v.ndim)], v) for k, v in arrays.items()})
        for k in ds.data_vars:
            if "MeV" in k:
                ds[k].attrs["units"] = "MeV"
            elif k.startswith(("nu_", "sigma", "band")):
                ds[k].attrs["units"] = "nu / (MeV fission)"
        ds.attrs["meta"] = json.dumps(_plain(meta))
        _write_nc(ds, path, type(self).__name__)
        return path

    @classmethod
    def load(cls, path):
        path = Path(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["__meta__"]))
                arrays = {k: z[k] for k in z.files if k != "__meta__"}
        else:
            ds = _read_nc(path, cls.__name__)
            meta = json.loads(ds.attrs["meta"])
            arrays = {k: np.asarray(ds[k].values) for k in ds.data_vars}
        kw = {}
        for f in dataclasses.fields(cls):
            if isinstance(meta.get(f.name), dict) and "__type__" in meta[f.name]:
                sub = _RECORDS[meta[f.name]["__type__"]]
                kw[f.name] = sub(**{g.name: arrays[f"{f.name}.{g.name}"] for g in dataclasses.fields(sub)})
            elif f.name in arrays:
                kw[f.name] = arrays[f.name]
            else:
                v = meta[f.name]
                kw[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)

    def to_json(self) -> dict:
        return _plain({k: (_fields(v) if isinstance(v, ArrayRecord) else v) for k, v in _fields(self).items()})


@dataclass(frozen=True)
class BetaScan(ArrayRecord):
    """Per-beta figures over the toys (nb = number of beta values).

    ``variance``: sum_i U_ii on the reference data (Asimov), [nu/(MeV fission)]^2; ``variance_toys``:
    sum_i var_toys(nu_hat_i); ``bias_B``: B on the reference data; ``bias_B_mean``: toy average of B;
    ``bias_sq``: sum_i (mean_toys nu_hat_i - nu_true_i)^2; ``positive_fraction``: fraction of toys
    with nu_hat > 0 in every bin."""

    betas: np.ndarray
    variance: np.ndarray
    variance_toys: np.ndarray
    bias_B: np.ndarray
    bias_B_mean: np.ndarray
    bias_sq: np.ndarray
    positive_fraction: np.ndarray


@dataclass(frozen=True)
class UnfoldingResult(ArrayRecord):
    """Unfolded flux at the chosen beta with bands; all fluxes in nu/(MeV fission) per bin.

    ``nu_hat``: estimate on the observed data; ``sigma``: sqrt(diag U) on the observed data;
    ``band68``/``band95`` (2, m): toy percentiles (16/84, 2.5/97.5) of nu_hat at ``beta``;
    ``flux_unfolded_range``: [true, estimate, toy 95% upper bound] of sum_i nu_i dE_i [nu/fission]."""

    scenario: str
    nu_edges_MeV: np.ndarray
    nu_true: np.ndarray
    nu_hat: np.ndarray
    sigma: np.ndarray
    band68: np.ndarray
    band95: np.ndarray
    toy_median: np.ndarray
    beta: float
    beta_physical: float
    beta_physical_toys: np.ndarray
    beta_bias: float
    flux_unfolded_range: np.ndarray
    scan: BetaScan
    n_toys: int
    seed: int

    def summary(self) -> dict:
        """Scalars for summary.json."""
        t, e, ub = (float(x) for x in self.flux_unfolded_range)
        return {
            "scenario": self.scenario, "beta": self.beta, "beta_physical": self.beta_physical,
            "beta_physical_toys_median": float(np.median(self.beta_physical_toys)), "beta_bias": self.beta_bias,
            "flux_unfolded_range_true": t, "flux_unfolded_range_estimate": e, "flux_unfolded_range_upper95": ub,
            "upper95_over_true": ub / t, "n_toys": self.n_toys, "seed": self.seed,
            "nu_edges_MeV": _plain(self.nu_edges_MeV), "nu_true": _plain(self.nu_true),
            "nu_hat": _plain(self.nu_hat), "band68": _plain(self.band68), "band95": _plain(self.band95),
        }


def load(path):
    """Read any cevnsjax result file (netCDF), dispatching on its ``cevnsjax_kind`` attribute:
    FitResult, ProfileResult, ScanResult, PosteriorResult or an unfolding result."""
    import xarray as xr

    with xr.open_dataset(path) as ds:
        kind = ds.attrs.get("cevnsjax_kind")
        is_scan = "delta_chi2" in ds.data_vars and "grid" in ds.attrs
    if kind == "FitResult":
        return FitResult.load(path)
    if kind == "ProfileResult":
        return ProfileResult.load(path)
    if kind == "ScanResult" or is_scan:
        return load_scan(path)
    if kind == "UnfoldingProblem":
        import cevnsjax.stats.unfold  # noqa: F401 (registers the record type)
    if kind in _RECORDS:
        return _RECORDS[kind].load(path)
    return PosteriorResult.load(path)
