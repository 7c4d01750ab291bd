"""Posterior results: NumPyro samples with diagnostics, ArviZ InferenceData, plots and files.

A :class:`PosteriorResult` holds the groups of an ArviZ ``InferenceData`` as plain NumPy arrays
(``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data``, ``prior``,
``prior_predictive``, ``posterior_predictive``; sampled arrays are shaped (chain, draw, ...)).
ArviZ and matplotlib are imported only inside the functions that need them, so sampling, the
convergence check (rank-normalised split R-hat and bulk ESS, Vehtari et al. 2021, computed with
``numpyro.diagnostics``) and ``save("x.npz")`` work on machines without ArviZ. ``save("x.nc")``,
``summary()``, ``idata`` and the plots need ArviZ / matplotlib.
"""

from __future__ import annotations

import json
from typing import Mapping

import numpy as np

__all__ = ["PosteriorResult", "rank_diagnostics"]

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

    Elementwise over trailing dims. Same definitions as ``arviz.rhat`` / ``arviz.ess(method="bulk")``.
    """
    from numpyro.diagnostics import effective_sample_size, gelman_rubin

    x = np.asarray(x, float)
    if x.ndim < 2 or x.shape[1] < 4:
        raise ValueError(f"need draws shaped (chain, draw >= 4, ...), got {x.shape}")
    xs = _split_chains(x)
    zb = _z_scale(xs)
    zf = _z_scale(np.abs(xs - np.median(xs, axis=(0, 1))))
    const = np.ptp(xs.reshape(-1, *xs.shape[2:]), axis=0) == 0
    rhat = np.maximum(gelman_rubin(zb), gelman_rubin(zf))
    ess = effective_sample_size(zb)
    rhat = np.where(const, 1.0, rhat)
    ess = np.where(const, float(x.shape[0] * x.shape[1]), ess)
    return rhat, ess


def _flat(samples: Mapping[str, np.ndarray], names) -> tuple:
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

    def to_inference_data(self):
        import arviz as az

        dims = {}
        for site in self.observed_sites:
            obs = self.groups["observed_data"].get(site)
            if obs is not None:
                dims[site] = [f"{site}_dim_{i}" for i in range(np.ndim(obs))]
        kw = {g: (v or None) for g, v in self.groups.items()}
        attrs = {_ATTR_KEY: json.dumps(self.attrs, default=_jsonable)}
        return az.from_dict(**kw, dims=dims, attrs=attrs)

    @classmethod
    def from_inference_data(cls, idata, **kw) -> "PosteriorResult":
        groups, attrs = {}, {}
        for g in GROUPS:
            if g in idata.groups():
                ds = getattr(idata, g)
                groups[g] = {k: np.asarray(ds[k].values) for k in ds.data_vars}
                if _ATTR_KEY in ds.attrs and not attrs:
                    attrs = json.loads(ds.attrs[_ATTR_KEY])
        out = cls(groups, attrs, **kw)
        out._idata = idata
        return out

    def summary(self, var_names=None, **kwargs):
        """``arviz.summary`` table (pandas DataFrame) of the latent sites (or ``var_names``)."""
        import arviz as az

        return az.summary(self.idata, var_names=self._check_vars(var_names), **kwargs)

    # ------------------------------------------------------------------ files
    def save(self, path) -> str:
        """Write to ``path``: ``.nc`` -> netCDF via ArviZ (h5netcdf), ``.npz`` -> NumPy (no ArviZ needed)."""
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
    def load(cls, path, **kw) -> "PosteriorResult":
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

    # ------------------------------------------------------------------ plots
    def plot_corner(self, path=None, var_names=None, truths: Mapping | None = None, bins: int = 30,
                    max_params: int = 12):
        """Corner plot (1-D histograms on the diagonal, 2-D histograms below) of the latent sites or
        ``var_names``; ``truths`` (label -> value) draws reference lines. Returns the figure."""
        from matplotlib.figure import Figure

        names = self._check_vars(var_names)
        labels, X = _flat(self.posterior, names)
        k = len(labels)
        if k > max_params:
            raise ValueError(f"{k} scalar parameters ({labels[:5]}...); choose var_names from "
                             f"{list(self.posterior)} or raise max_params")
        fig = Figure(figsize=(2.2 * k + 0.6, 2.2 * k + 0.6))
        axes = fig.subplots(k, k, squeeze=False)
        truths = dict(truths or {})
        for i in range(k):
            for j in range(k):
                ax = axes[i, j]
                if j > i:
                    ax.set_visible(False)
                    continue
                if i == j:
                    ax.hist(X[:, i], bins=bins, histtype="step", color="k")
                    q = np.percentile(X[:, i], [16, 50, 84])
                    for v in q:
                        ax.axvline(v, ls="--", lw=0.8, color="k")
                    ax.set_title(f"{labels[i]} = {q[1]:.4g}$^{{+{q[2] - q[1]:.2g}}}_{{-{q[1] - q[0]:.2g}}}$",
                                 fontsize=8)
                    ax.set_yticks([])
                    if labels[i] in truths:
                        ax.axvline(truths[labels[i]], color="C0")
                else:
                    ax.hist2d(X[:, j], X[:, i], bins=bins, cmap="Greys")
                    if labels[j] in truths:
                        ax.axvline(truths[labels[j]], color="C0")
                    if labels[i] in truths:
                        ax.axhline(truths[labels[i]], color="C0")
                if i == k - 1:
                    ax.set_xlabel(labels[j])
                if j == 0 and i > 0:
                    ax.set_ylabel(labels[i])
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig

    def plot_spectrum(self, path=None, edges=None, observed_site: str | None = None, *, xlabel: str = "E [keV]",
                      ylabel: str = "counts / bin", logy: bool = False):
        """Observed counts (points with sqrt(n) bars) and the posterior-predictive median with 68 %
        and 95 % bands, as steps over bin ``edges``. Returns the figure."""
        from matplotlib.figure import Figure

        obs_sites = list(self.groups["observed_data"])
        if observed_site is None:
            if len(obs_sites) != 1:
                raise ValueError(f"give observed_site; valid choices: {obs_sites}")
            observed_site = obs_sites[0]
        if observed_site not in obs_sites or observed_site not in self.groups["posterior_predictive"]:
            raise ValueError(f"unknown observed site {observed_site!r}; valid choices: "
                             f"{[s for s in obs_sites if s in self.groups['posterior_predictive']]}")
        n = np.ravel(self.groups["observed_data"][observed_site])
        pp = self.groups["posterior_predictive"][observed_site]
        pp = pp.reshape(pp.shape[0] * pp.shape[1], -1)
        edges = np.arange(n.size + 1, dtype=float) if edges is None else np.asarray(edges, float)
        if edges.shape != (n.size + 1,):
            raise ValueError(f"edges has {edges.size} values; site {observed_site!r} has {n.size} bins, "
                             f"so give {n.size + 1} edges")
        q = np.percentile(pp, [2.5, 16, 50, 84, 97.5], axis=0)
        step = lambda a: np.append(a, a[-1])
        fig = Figure(figsize=(6.4, 4.4))
        ax = fig.subplots()
        ax.fill_between(edges, step(q[0]), step(q[4]), step="post", color="C0", alpha=0.2, label="95 % PPC")
        ax.fill_between(edges, step(q[1]), step(q[3]), step="post", color="C0", alpha=0.4, label="68 % PPC")
        ax.step(edges, step(q[2]), where="post", color="C0", label="PPC median")
        c = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(c, n, yerr=np.sqrt(np.maximum(n, 0)), fmt="ko", ms=3, label="data")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        ax.legend(frameon=False)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig

    def __repr__(self) -> str:
        return (f"PosteriorResult({self.num_chains} chains x {self.num_draws} draws, latent {list(self.latent_sites)}, "
                f"observed {list(self.observed_sites)}, divergences {self.num_divergences})")


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
