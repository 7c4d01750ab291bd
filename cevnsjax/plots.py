"""Plots, one function per result type; matplotlib is imported inside each function.

* :func:`plot_scan` / :func:`plot_exclusion`: a ScanResult (or its dataset / netCDF) as a Delta
  chi^2 map with contours, or coupling limits versus mass;
* :func:`plot_profile`: a ProfileResult's Delta chi^2 curve with the confidence levels;
* :func:`plot_fit_spectrum`: observed counts, the best-fit expectation with its signal and background
  components and the residuals of a JointModel fit (:func:`fit_spectrum_parts` gives the arrays);
* :func:`plot_corner` / :func:`plot_spectrum`: a PosteriorResult's corner plot and predictive bands;
* :func:`plot_unfolded`: an unfolded flux with its band.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["plot_scan", "plot_exclusion", "plot_profile", "plot_fit_spectrum", "fit_spectrum_parts", "plot_corner",
           "plot_spectrum", "plot_unfolded"]


def plot_scan(ds, levels=("90%", "2sigma", "3sigma"), dof: int | None = None, ax=None, cmap="viridis_r",
              vmax: float | None = 25.0, best_fit: bool = True):
    """Delta chi^2 map (2-D) or curve (1-D) with the confidence contours; returns the axes."""
    import matplotlib.pyplot as plt

    from cevnsjax.stats.scan import as_result, confidence_threshold, contours

    r = as_result(ds)
    axes = r.grid.axes
    ax = ax or plt.subplots(figsize=(6, 4.5))[1]
    d = r.delta_chi2
    dof = len(axes) if dof is None else dof
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(axes) == 1:
        ax.plot(axes[0].values, d, "k-")
        for i, lev in enumerate(levels):
            ax.axhline(confidence_threshold(lev, dof), color=colours[i % len(colours)], ls="--", label=str(lev))
        ax.set_xscale(axes[0].spacing.replace("lin", "linear"))
        ax.set_xlabel(_axis_label(r, axes[0].name))
        ax.set_ylabel(r"$\Delta\chi^2$")
        ax.legend()
        return ax
    X, Y = np.meshgrid(axes[0].values, axes[1].values, indexing="ij")
    m = ax.pcolormesh(X, Y, np.minimum(d, vmax) if vmax else d, cmap=cmap, shading="auto")
    plt.colorbar(m, ax=ax, label=r"$\Delta\chi^2$")
    for i, (lev, paths) in enumerate(contours(r, levels, dof).items()):
        for j, p in enumerate(paths):
            ax.plot(p[:, 0], p[:, 1], color=colours[i % len(colours)], lw=1.5, label=str(lev) if j == 0 else None)
    if best_fit:
        b = r.best_fit()
        ax.plot(b[axes[0].name], b[axes[1].name], "w*", ms=10, mec="k")
    ax.set_xscale(axes[0].spacing.replace("lin", "linear"))
    ax.set_yscale(axes[1].spacing.replace("lin", "linear"))
    ax.set_xlabel(_axis_label(r, axes[0].name))
    ax.set_ylabel(_axis_label(r, axes[1].name))
    ax.legend(loc="best", fontsize="small")
    return ax


def _axis_label(r, name: str) -> str:
    """``name [unit]`` of a scan axis: the unit from the scan's ``parameter_units`` attribute, else
    :func:`cevnsjax.reporting.parameter_unit`."""
    import json

    from cevnsjax.reporting import parameter_unit, with_unit

    units = r.attrs.get("parameter_units") or {}
    units = json.loads(units) if isinstance(units, str) else dict(units)
    return with_unit(name, units.get(name) or parameter_unit(name))


def plot_exclusion(ds, mass=None, coupling=None, levels=("90%",), dof: int | None = None, ax=None, label=""):
    """Exclusion curves (coupling limit vs mass) for the given levels; returns the axes."""
    import matplotlib.pyplot as plt

    from cevnsjax.stats.scan import as_result, exclusion_curve

    r = as_result(ds)
    ax = ax or plt.subplots(figsize=(6, 4.5))[1]
    names = r.grid.names
    mass = names[0] if mass is None else mass
    coupling = names[1] if coupling is None else coupling
    for lev in levels:
        m, lim, _ = exclusion_curve(r, mass, coupling, lev, dof)
        ax.plot(m, lim, label=f"{label} {lev}".strip())
    am, ac = r.grid.axes[names.index(mass)], r.grid.axes[names.index(coupling)]
    ax.set_xscale(am.spacing.replace("lin", "linear"))
    ax.set_yscale(ac.spacing.replace("lin", "linear"))
    ax.set_xlabel(_axis_label(r, mass))
    ax.set_ylabel(f"{_axis_label(r, coupling)} (excluded above)")
    ax.legend()
    return ax


def plot_corner(res, path=None, var_names=None, truths: Mapping | None = None, bins: int = 30,
                max_params: int = 12, units: Mapping | None = None):
    """Corner plot (1-D histograms on the diagonal, 2-D histograms below) of the latent sites or
    ``var_names``; ``truths`` (label -> value) draws reference lines. Axis labels carry the units of
    ``units`` (name -> unit), else ``res.attrs["parameter_units"]``, else
    :func:`cevnsjax.reporting.parameter_unit`; dimensionless ones none. Returns the figure."""
    from matplotlib.figure import Figure

    from cevnsjax.reporting import parameter_unit, with_unit

    names = res._check_vars(var_names)
    from cevnsjax.results import flat_samples

    labels, X = flat_samples(res.posterior, names)
    k = len(labels)
    known = {**dict(res.attrs.get("parameter_units") or {}), **dict(units or {})}
    shown = [with_unit(lab, known.get(lab.split("[")[0]) or parameter_unit(lab.split("[")[0])) for lab in labels]
    if k > max_params:
        raise ValueError(f"{k} scalar parameters ({labels[:5]}...); choose var_names from "
                         f"{list(res.posterior)} or raise max_params")
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
                ax.set_xlabel(shown[j], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(shown[i], fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig

def plot_spectrum(res, path=None, edges=None, observed_site: str | None = None, *, xlabel: str = "E [keV]",
                  ylabel: str = "counts / bin", logy: bool = False):
    """Observed counts (points with sqrt(n) bars) and the posterior-predictive median with 68 %
    and 95 % bands, as steps over bin ``edges``. Returns the figure."""
    from matplotlib.figure import Figure

    obs_sites = list(res.groups["observed_data"])
    if observed_site is None:
        if len(obs_sites) != 1:
            raise ValueError(f"give observed_site; valid choices: {obs_sites}")
        observed_site = obs_sites[0]
    if observed_site not in obs_sites or observed_site not in res.groups["posterior_predictive"]:
        raise ValueError(f"unknown observed site {observed_site!r}; valid choices: "
                         f"{[s for s in obs_sites if s in res.groups['posterior_predictive']]}")
    n = np.ravel(res.groups["observed_data"][observed_site])
    pp = res.groups["posterior_predictive"][observed_site]
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


def plot_profile(prof, ax=None, levels=(0.6827, 0.95), label=""):
    """Delta chi^2 of a 1-D ProfileResult against its parameter, with chi2(1 dof) levels; returns the axes."""
    import matplotlib.pyplot as plt
    from scipy import stats

    if len(prof.names) != 1:
        raise ValueError(f"plot_profile needs a 1-D profile; this one is over {prof.names}")
    ax = ax or plt.subplots(figsize=(6, 4.5))[1]
    o = np.argsort(prof.points[:, 0])
    ax.plot(prof.points[o, 0], prof.delta_chi2[o], "k-", label=label or None)
    for i, cl in enumerate(levels):
        ax.axhline(stats.chi2.ppf(cl, 1), color=f"C{i}", ls="--", label=f"{100 * cl:.4g} % CL")
    ax.set_xlabel(prof.names[0])
    ax.set_ylabel(r"$\Delta\chi^2$")
    ax.legend(frameon=False)
    return ax


def fit_spectrum_parts(model, fit, obs: Mapping | None = None, experiment: str | None = None) -> dict:
    """What :func:`plot_fit_spectrum` draws, as NumPy arrays over the first observable axis (a 2-D
    observable, PE x time, is summed over time): ``edges``, observed ``n`` and its error ``sigma``
    (sqrt(n) for counts, the released errors combined in quadrature for a Gaussian likelihood),
    expectation ``mu`` at ``fit.best_fit`` with its ``signal`` and ``backgrounds`` (name -> array)
    parts, ``residual`` ((n - mu)/sqrt(mu), or (n - mu)/sigma for a Gaussian likelihood), ``chi2``
    (Poisson deviance or Gaussian chi^2 over all bins, unprojected), ``ndf`` (bins - free parameters),
    ``likelihood``, ``kind``, ``xlabel`` and ``ylabel``."""
    from cevnsjax.experiment import predict
    from cevnsjax.reporting import observable_axis
    from cevnsjax.stats.likelihood import gaussian_chi2, poisson_deviance

    obs = model.observed() if obs is None else obs
    names = [a.experiment.name for a in model.analyses]
    experiment = names[0] if experiment is None else experiment
    if experiment not in names or experiment not in obs:
        raise ValueError(f"unknown experiment {experiment!r}; valid choices: {[n for n in names if n in obs]}")
    a = model.analyses[names.index(experiment)]
    theta = model.theta(a, fit.best_fit)
    pred = predict(theta, a.prepared)
    mu_full = np.asarray(pred.total, float)
    n_full = np.asarray(obs[experiment], float).reshape(mu_full.shape)
    o = a.experiment.observed
    gauss = o is not None and o.likelihood == "gaussian"
    prep = a.prepared
    bkgs = {b.name: np.asarray(b.counts(prep.obs_edges, prep.exposure_kg_day), float) * np.ones(mu_full.shape)
            for b in theta.backgrounds}
    if gauss:
        err = np.asarray(o.errors, float).reshape(mu_full.shape)
        chi2, ndf_bins = float(gaussian_chi2(n_full, mu_full, sigma=err)), mu_full.size
    else:
        used = mu_full > 0
        chi2, ndf_bins = float(poisson_deviance(n_full[used], mu_full[used])) + 0.0, int(used.sum())  # no -0.0
    proj = (lambda x: np.asarray(x, float).reshape(mu_full.shape[0], -1).sum(axis=1))
    n, mu = proj(n_full), proj(mu_full)
    if gauss:
        sigma = np.sqrt(proj(err ** 2))
        residual = (n - mu) / sigma
    else:
        sigma = np.sqrt(np.maximum(n, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            residual = np.where(mu > 0, (n - mu) / np.sqrt(np.where(mu > 0, mu, 1.0)), np.nan)
    kind = a.experiment.observable.kind
    sym, unit = observable_axis(kind)
    label = (o.label or "") if o is not None else ""
    ylabel = "counts / bin" if not gauss else ("counts / day / bin" if "/day" in label.replace(" ", "") else
                                                "rate / bin (released units)")
    return {"experiment": experiment, "edges": np.asarray(a.experiment.observable.edges, float), "n": n,
            "sigma": sigma, "mu": mu, "signal": proj(pred.signal), "backgrounds": {k: proj(v) for k, v in bkgs.items()},
            "residual": residual, "chi2": chi2, "ndf": int(ndf_bins - fit.n_free), "likelihood": "gaussian" if gauss
            else "poisson", "kind": kind, "xlabel": sym if sym == unit else f"{sym} [{unit}]", "ylabel": ylabel}


def plot_fit_spectrum(model, fit, obs: Mapping | None = None, experiment: str | None = None, path=None, *,
                      logy: bool = False, title: str | None = None):
    """Two panels: top, the observed values (sqrt(n) bars; the released errors for a Gaussian
    likelihood), the best-fit total and its signal and background components as steps (each
    component drawn on its own, so they add up to the total); bottom, the residuals (n - mu)/sqrt(mu)
    (or (n - mu)/sigma). Title: the experiment and chi^2/ndf (ndf = bins - free parameters). A 2-D
    observable is projected on its first axis. Saves to ``path`` when given; returns the Figure.
    The arrays come from :func:`fit_spectrum_parts`; each drawn artist's ``gid`` names it
    (``data``, ``total``, ``signal``, ``bkg:<name>``, ``residual``)."""
    from matplotlib.figure import Figure

    d = fit_spectrum_parts(model, fit, obs, experiment)
    e, c = d["edges"], 0.5 * (d["edges"][1:] + d["edges"][:-1])
    fig = Figure(figsize=(6.4, 5.6))
    top, bot = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    top.stairs(d["mu"], e, baseline=None, color="k", lw=1.5, label="best fit", gid="total")
    top.stairs(d["signal"], e, baseline=None, color="C0", lw=1.2, label="CEvNS signal", gid="signal")
    for i, (name, v) in enumerate(d["backgrounds"].items()):
        top.stairs(v, e, baseline=None, color=f"C{i + 1}", lw=1.0, ls="--", label=f"background: {name}", gid=f"bkg:{name}")
    top.errorbar(c, d["n"], yerr=d["sigma"], fmt="ko", ms=3, label="data", gid="data")
    top.set_ylabel(d["ylabel"])
    if logy:
        top.set_yscale("log")
    top.legend(frameon=False, fontsize="small")
    top.set_title(title if title is not None else
                  f"{d['experiment']}: $\\chi^2$/ndf = {d['chi2']:.1f}/{d['ndf']}"
                  + (" (Poisson deviance)" if d["likelihood"] == "poisson" else ""), fontsize=10)
    bot.axhline(0.0, color="k", lw=0.8)
    bot.axhspan(-1.0, 1.0, color="0.85", zorder=0)
    bot.plot(c, d["residual"], "ko", ms=3, gid="residual")
    bot.set_ylabel(r"$(n-\mu)/\sqrt{\mu}$" if d["likelihood"] == "poisson" else r"$(n-\mu)/\sigma$")
    bot.set_xlabel(d["xlabel"])
    fig.align_ylabels([top, bot])
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_unfolded(res, ax=None, E=None, flux=None, band=None, label="unfolded"):
    """An unfolded spectrum: ``E`` (bin centres or nodes), ``flux`` and an optional (lo, hi) ``band``,
    taken from ``res`` attributes of those names when not given; returns the axes."""
    import matplotlib.pyplot as plt

    E = np.asarray(getattr(res, "E", None) if E is None else E, float)
    flux = np.asarray(getattr(res, "flux", None) if flux is None else flux, float)
    ax = ax or plt.subplots(figsize=(6.4, 4.4))[1]
    ax.plot(E, flux, "C0-", label=label)
    if band is not None:
        ax.fill_between(E, band[0], band[1], color="C0", alpha=0.3)
    ax.set_xlabel("E [MeV]")
    ax.set_ylabel("flux")
    ax.legend(frameon=False)
    return ax
