"""What `cevnsjax fit` and `cevnsjax scan` write for publication (issue 13): per-bin log-likelihoods that
ArviZ's LOO accepts, provenance in fit.json, the two-panel fit spectrum, the exclusion table and plot, and
netCDF variables with units."""

import hashlib
import json
import warnings

import numpy as np
import pytest

import cevnsjax
from cevnsjax.cli import main
from cevnsjax.io.spec import PRESET_DIR

BINS = 40  # the conus preset: 40 bins of 20 eVee from 0.21 to 1.01 keVee
SEED = 7


def _one_observation_warnings(idata):
    """az.loo on ``idata``; the messages of the warnings that say the log-likelihood is not pointwise."""
    import arviz as az

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loo = az.loo(idata)
    msgs = [str(w.message) for w in caught]
    return loo, [m for m in msgs if "same with the sum" in m or "Observed RV" in m or "one observation" in m]


@pytest.fixture(scope="module")
def nuts_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    args = ["fit", "conus", "--out", str(out), "--asimov", "--num-samples", "60", "--num-warmup", "60",
            "--num-chains", "2", "--seed", str(SEED), "--prior", "signal_scale=uniform:0:3",
            "--prior", "bkg.flat.rate=uniform:0:30"]
    assert main(args) == 0
    return out


def test_posterior_has_one_log_likelihood_per_bin_and_loo_accepts_it(nuts_run):
    import arviz as az

    idata = az.from_netcdf(nuts_run / "posterior.nc")
    ll = idata.log_likelihood["obs_conus"]
    assert ll.dims == ("chain", "draw", "E_ee_keV") and ll.shape == (2, 60, BINS)
    edges = np.asarray(cevnsjax.load_preset("conus", with_data=False).observable.edges)
    np.testing.assert_allclose(ll["E_ee_keV"].values, 0.5 * (edges[1:] + edges[:-1]), rtol=0, atol=1e-12)
    assert idata.observed_data["obs_conus"].dims == ("E_ee_keV",)
    assert idata.posterior_predictive["obs_conus"].dims == ("chain", "draw", "E_ee_keV")
    loo, bad = _one_observation_warnings(idata)
    assert not bad, bad
    assert loo.n_data_points == BINS
    # the control: the same draws summed over bins (the old to_event site) do trigger the warning
    summed = az.from_dict(posterior={"a": idata.posterior["signal_scale"].values},
                          log_likelihood={"obs": ll.values.sum(-1)})
    assert _one_observation_warnings(summed)[1]


def test_pointwise_sites_keep_the_summed_density():
    """The observed site is batched over the bins (no .to_event): one log-likelihood per bin, and the
    model's log density still sums them (scipy's Poisson pmf as the reference)."""
    import jax.numpy as jnp
    from numpyro.infer.util import log_density
    from scipy import stats

    from cevnsjax.demo import simulated_experiment
    from cevnsjax.stats.model import Analysis, JointModel

    exp, _ = simulated_experiment()
    model = JointModel([Analysis(exp, {"signal_scale": ("uniform", 0, 3), "bkg.flat.rate": ("uniform", 0, 20)})])
    params = {"signal_scale": jnp.asarray(1.3), "bkg.flat.rate": jnp.asarray(4.0)}
    obs = model.observed()
    lp, trace = log_density(model, (), {"obs": obs}, params)
    site = trace["obs_simulated_ge"]
    assert site["fn"].batch_shape == (40,) and site["fn"].event_shape == ()
    mu = np.asarray(model.expected(params)["simulated_ge"])
    per_bin = np.asarray(site["fn"].log_prob(site["value"]))
    np.testing.assert_allclose(per_bin, stats.poisson.logpmf(np.asarray(obs["simulated_ge"]), mu), rtol=1e-11)
    total = sum(float(np.sum(t["fn"].log_prob(t["value"]))) for t in trace.values() if t["type"] == "sample")
    np.testing.assert_allclose(float(lp), total, rtol=1e-13)


def test_fit_json_has_errors_seed_version_and_spec_hash(nuts_run):
    from cevnsjax.results import load

    rep = json.loads((nuts_run / "fit.json").read_text())
    mle = load(nuts_run / "mle.nc")
    assert set(rep["errors"]) == {"signal_scale", "bkg.flat.rate"}
    for k, v in rep["errors"].items():
        assert v > 0 and np.isfinite(v)
        np.testing.assert_allclose(v, mle.errors[k], rtol=1e-12)
    # Poisson error of a signal strength from ~500 signal counts on ~2000 background counts: ~15 %
    assert 0.05 < rep["errors"]["signal_scale"] < 0.5
    assert rep["seed"] == SEED and rep["cevnsjax_version"] == cevnsjax.__version__
    spec_file = PRESET_DIR / "conus.toml"
    assert rep["spec_sha256"] == hashlib.sha256(spec_file.read_bytes()).hexdigest()
    assert rep["spec_path"] == str(spec_file.resolve())
    assert rep["ndf"] == BINS - 2 and abs(rep["chi2"]) < 1e-6  # Asimov data: the best fit is the data
    assert rep["units"]["bkg.flat.rate"] == "counts/(keVee kg day)"


def _simulated_fit(gaussian=False):
    from cevnsjax.demo import simulated_experiment
    from cevnsjax.experiment import Observed
    from cevnsjax.stats.model import Analysis, JointModel

    exp, _ = simulated_experiment(seed=3)
    if gaussian:
        n = exp.observed.values
        exp = exp.__class__(**{**exp.__dict__, "observed": Observed(n, np.sqrt(n + 4.0), "gaussian",
                                                                       "simulated, counts/day per bin")})
    model = JointModel([Analysis(exp, {"signal_scale": ("uniform", 0, 5), "bkg.flat.rate": ("uniform", 0, 20)})])
    return exp, model, model.fit()


def _by_gid(ax, gid):
    found = [a for a in [*ax.lines, *ax.patches, *ax.containers] if getattr(a, "get_gid", lambda: None)() == gid]
    assert len(found) == 1, (gid, found)
    return found[0]


def test_fit_spectrum_panels_residuals_and_components(nuts_run):
    from cevnsjax.plots import plot_fit_spectrum

    assert (nuts_run / "fit_spectrum.png").stat().st_size > 10_000
    exp, model, fit = _simulated_fit()
    fig = plot_fit_spectrum(model, fit)
    top, bot = fig.axes
    assert len(fig.axes) == 2
    n = np.asarray(exp.observed.values)
    mu = np.asarray(model.expected(fit.best_fit)[exp.name])
    r = _by_gid(bot, "residual")
    np.testing.assert_allclose(r.get_ydata(), (n - mu) / np.sqrt(mu), rtol=1e-12, atol=1e-12)
    assert np.max(np.abs(r.get_ydata())) > 0.5  # Poisson data: the residuals are not all zero
    total = _by_gid(top, "total").get_data().values
    parts = _by_gid(top, "signal").get_data().values + _by_gid(top, "bkg:flat").get_data().values
    np.testing.assert_allclose(total, mu, rtol=1e-12)
    np.testing.assert_allclose(parts, total, rtol=1e-10)
    np.testing.assert_allclose(_by_gid(top, "bkg:flat").get_data().edges, exp.observable.edges, rtol=0)
    assert bot.get_xlabel() == "E_ee [keVee]" and top.get_ylabel() == "counts / bin"
    ndf = n.size - 2
    dev = 2 * np.sum(mu - n + np.where(n > 0, n * np.log(np.where(n > 0, n, 1) / mu), 0.0))
    assert top.get_title() == f"simulated_ge: $\\chi^2$/ndf = {dev:.1f}/{ndf} (Poisson deviance)"


def test_fit_spectrum_gaussian_uses_released_errors(tmp_path):
    from cevnsjax.plots import fit_spectrum_parts, plot_fit_spectrum

    exp, model, fit = _simulated_fit(gaussian=True)
    fig = plot_fit_spectrum(model, fit, path=tmp_path / "g.png")
    assert (tmp_path / "g.png").exists()
    top, bot = fig.axes
    n, err = exp.observed.values, exp.observed.errors
    mu = np.asarray(model.expected(fit.best_fit)[exp.name])
    np.testing.assert_allclose(_by_gid(bot, "residual").get_ydata(), (n - mu) / err, rtol=1e-12, atol=1e-12)
    d = fit_spectrum_parts(model, fit)
    np.testing.assert_allclose(d["sigma"], err, rtol=1e-14)
    np.testing.assert_allclose(d["chi2"], np.sum(((n - mu) / err) ** 2), rtol=1e-10)
    assert top.get_ylabel() == "counts / day / bin" and "sigma" in bot.get_ylabel()


@pytest.fixture(scope="module")
def scan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan")
    args = ["scan", "conus", "--asimov", "--param", "m_zprime_MeV=log:1:1000:5", "--param", "g_zprime=log:1e-6:1e-3:10",
            "--profile", "bkg.flat.rate", "--prior", "bkg.flat.rate=uniform:0:30", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    return out


def test_scan_writes_exclusion_table_and_plot(scan_run):
    import matplotlib.pyplot as plt

    from cevnsjax.plots import plot_exclusion
    from cevnsjax.stats.scan import exclusion_curve, load_scan

    text = (scan_run / "exclusion.csv").read_text().splitlines()
    assert text[0].startswith("#") and "90% CL" in text[0] and "dof=2" in text[0] and "4.60517" in text[0]
    assert text[1] == "m_zprime_MeV,g_zprime_limit_90CL,open_top"
    rows = np.array([[float(x) for x in ln.split(",")] for ln in text[2:]])
    res = load_scan(scan_run / "scan.nc")
    m, lim, open_top = exclusion_curve(res, "m_zprime_MeV", "g_zprime", "90%", dof=2)
    assert rows.shape == (5, 3) and np.all(np.isfinite(rows[:, 1]))
    np.testing.assert_allclose(rows[:, 0], m, rtol=1e-9)
    np.testing.assert_allclose(rows[:, 1], lim, rtol=1e-9)
    np.testing.assert_array_equal(rows[:, 2], open_top)
    ax = plot_exclusion(res)  # its defaults: the first axis is the mass, 90 %, dof 2
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rows[:, 1], rtol=1e-9)
    plt.close(ax.figure)
    # the limit is where Delta chi^2 crosses 4.605 between the grid points around it
    d, g = res.delta_chi2, res.grid.axes[1].values
    for i, x in enumerate(rows[:, 1]):
        j = np.searchsorted(g, x)
        assert d[i, j - 1] <= 4.60517 < d[i, j]
    assert (scan_run / "exclusion.png").stat().st_size > 10_000


def test_netcdf_variables_have_units_and_provenance(nuts_run, scan_run):
    import xarray as xr

    from cevnsjax.results import FitResult, PosteriorResult, load

    spec = (PRESET_DIR / "conus.toml").read_text()
    scan = load(scan_run / "scan.nc")
    ds = scan.to_dataset()
    for k in ds.data_vars:
        assert ds[k].attrs.get("units") and ds[k].attrs.get("long_name"), k
    assert ds["bkg.flat.rate"].attrs["units"] == "counts/(keVee kg day)"
    assert ds["m_zprime_MeV"].attrs["units"] == "MeV"
    assert ds.attrs["cevnsjax_version"] == cevnsjax.__version__ and ds.attrs["spec"] == spec

    assert isinstance(load(nuts_run / "mle.nc"), FitResult)
    with xr.open_dataset(nuts_run / "mle.nc") as ds:
        assert all(ds[k].attrs.get("units") and ds[k].attrs.get("long_name") for k in ds.data_vars)
        assert ds.attrs["cevnsjax_version"] == cevnsjax.__version__ and ds.attrs["spec"] == spec

    post = load(nuts_run / "posterior.nc")
    assert isinstance(post, PosteriorResult)
    idata = post.idata
    for g in ("posterior", "observed_data", "log_likelihood", "posterior_predictive"):
        grp = getattr(idata, g)
        assert grp.attrs["cevnsjax_version"] == cevnsjax.__version__ and grp.attrs["spec"] == spec, g
        for k in grp.data_vars:
            assert grp[k].attrs.get("units") and grp[k].attrs.get("long_name"), (g, k)
    assert idata.posterior["bkg.flat.rate"].attrs["units"] == "counts/(keVee kg day)"
    assert idata.observed_data["obs_conus"].attrs["units"] == "counts"
    assert idata.observed_data["E_ee_keV"].attrs["units"] == "keVee"
