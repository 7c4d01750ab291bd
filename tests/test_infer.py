"""NUTS runner, PosteriorResult (groups, diagnostics, files, plots), priors, and calibration checks."""

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

import cevnsjax as cj
from cevnsjax.results import PosteriorResult, rank_diagnostics
from cevnsjax.stats import fit
from cevnsjax.stats.infer import (
    HalfNormal,
    LogNormal,
    LogUniform,
    Normal,
    TruncatedNormal,
    Uniform,
    model_sites,
    prior_from_spec,
    run_nuts,
    sample_params,
)
from cevnsjax.stats.likelihood import poisson_log_likelihood


# ------------------------------------------------------------------------------------------ priors
@pytest.mark.parametrize("prior,ref", [
    (Uniform(0.1, 0.4), stats.uniform(0.1, 0.3)),
    (LogUniform(1e-3, 1e1), stats.loguniform(1e-3, 1e1)),
    (Normal(1.0, 0.2), stats.norm(1.0, 0.2)),
    (TruncatedNormal(1.0, 0.5, lo=0.0), stats.truncnorm(-2.0, np.inf, 1.0, 0.5)),
    (TruncatedNormal(0.0, 1.0, lo=-1.0, hi=2.0), stats.truncnorm(-1.0, 2.0, 0.0, 1.0)),
    (HalfNormal(3.0), stats.halfnorm(0, 3.0)),
    (LogNormal(1.1, 0.1), stats.lognorm(s=0.1, scale=1.1)),
])
def test_prior_densities_match_scipy(prior, ref):
    x = ref.ppf(np.array([0.05, 0.3, 0.5, 0.9]))
    np.testing.assert_allclose(prior.distribution().log_prob(jnp.asarray(x)), ref.logpdf(x), rtol=1e-10)


@pytest.mark.parametrize("make,msg", [
    (lambda: Uniform(1.0, 0.5), r"Uniform\(lo=1.0, hi=0.5\): need lo < hi"),
    (lambda: LogUniform(0.0, 1.0), "must be positive"),
    (lambda: LogUniform(-1.0, 1.0), "must be positive"),
    (lambda: Normal(0.0, -1.0), "sigma must be > 0"),
    (lambda: HalfNormal(0.0), "sigma must be > 0"),
    (lambda: TruncatedNormal(0.0, 1.0), "give lo and/or hi"),
    (lambda: TruncatedNormal(0.0, 1.0, lo=2.0, hi=1.0), "need lo < hi"),
    (lambda: LogNormal(-1.0, 0.1), "median must be > 0"),
    (lambda: Uniform(0.0, float("nan")), "must be finite"),
    (lambda: prior_from_spec(("gauss", 0, 1)), r"unknown prior kind 'gauss'.*Valid choices: uniform, log_uniform, normal"),
    (lambda: prior_from_spec({"kind": "uniform", "low": 0, "hi": 1}), r"unknown argument of Uniform 'low'.*Did you mean 'lo'"),
    (lambda: prior_from_spec(3.0), "valid kinds: uniform"),
])
def test_bad_priors_name_the_fix(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_prior_specs_and_names():
    assert prior_from_spec(("uniform", 0, 1)) == Uniform(0, 1)
    assert prior_from_spec({"kind": "log-uniform", "lo": 1e-3, "hi": 1}) == LogUniform(1e-3, 1)
    assert prior_from_spec(HalfNormal(2.0)) == HalfNormal(2.0)
    valid = __import__("cevnsjax.physics.params", fromlist=["x"]).field_names()
    with pytest.raises(ValueError, match=r"unknown parameter 'sin2_theta'. Did you mean 'sin2_theta_w'\?.*Valid choices"):
        numpyro.handlers.seed(sample_params, 0)({"sin2_theta": Uniform(0, 1)}, valid=valid)


# ------------------------------------------------------------------------------ Ge model and run
@pytest.fixture(scope="module")
def ge():
    """Ge at Dresden-II, 18 recoil bins: sin^2 theta_W and a flat background, ~6000 events."""
    kb = cj.prepare("Ge", cj.Reactor.dresden_ii(), bin_edges_keV=np.linspace(0.2, 2.0, 19))
    expo = 2.924 * 96.4 * 0.05
    flat = jnp.full(18, 20.0)

    def mu(p):
        return cj.expected_counts(cj.PhysicsParams(sin2_theta_w=p["s2w"]), kb, expo) + p["bkg"] * flat

    def model(n_obs=None):
        p = sample_params({"s2w": Uniform(0.15, 0.35), "bkg": Uniform(0.0, 5.0)})
        numpyro.sample("obs", dist.Poisson(mu(p)), obs=n_obs)

    n = np.random.default_rng(5).poisson(np.asarray(mu({"s2w": 0.2386, "bkg": 1.0}))).astype(float)
    res = run_nuts(model, n_obs=n, num_warmup=400, num_samples=600, num_chains=4, seed=1, progress_bar=False)
    return dict(mu=mu, model=model, n=n, res=res, edges=np.linspace(0.2, 2.0, 19))


def test_groups_and_convergence(ge):
    r = ge["res"]
    g = r.groups
    assert set(g["posterior"]) == {"s2w", "bkg"} and g["posterior"]["s2w"].shape == (4, 600)
    assert g["log_likelihood"]["obs"].shape == (4, 600, 18)
    assert g["posterior_predictive"]["obs"].shape == (4, 600, 18)
    assert g["prior"]["s2w"].shape == (1, 2400) and g["prior_predictive"]["obs"].shape == (1, 2400, 18)
    np.testing.assert_array_equal(g["observed_data"]["obs"], ge["n"])
    assert {"diverging", "lp", "step_size", "n_steps", "acceptance_rate", "tree_depth"} <= set(g["sample_stats"])
    # pointwise log-likelihood equals the Poisson term at each draw
    s0 = {k: float(v[0, 0]) for k, v in g["posterior"].items()}
    np.testing.assert_allclose(g["log_likelihood"]["obs"][0, 0], stats.poisson.logpmf(ge["n"], ge["mu"](s0)), rtol=1e-9)
    # prior draws follow the prior
    assert 0.15 <= g["prior"]["s2w"].min() and g["prior"]["s2w"].max() <= 0.35
    assert r.converged, r.convergence_report()
    assert r.attrs["sampling_time_s"] > 0 and r.attrs["observed_sites"] == ["obs"]
    r.ess_min = 1e9  # thresholds are settable
    assert not r.converged
    r.ess_min = None


def test_fisher_widths_match_nuts_widths(ge):
    """Flat priors, ~6000 events: the posterior is near-Gaussian, so its standard deviations equal the
    Fisher widths at the MLE. Tolerance 10 %: the Monte-Carlo error of a standard deviation from
    ESS draws is ~1/sqrt(2 ESS) ~ 2.5 % at ESS ~ 800 (ESS checked below), and the non-Gaussian
    corrections are O(1/sqrt(N_events)) ~ 1 %."""
    r = ge["res"]
    nll = lambda p, n: -2 * poisson_log_likelihood(n, ge["mu"](p), saturated=True)  # -2 ln L
    best = fit.minimize(nll, {"s2w": 0.25, "bkg": 1.2}, ge["n"], bounds={"s2w": (0.15, 0.35), "bkg": (0, 5)})
    F = fit.fisher_matrix(ge["mu"], best.params)
    post = r.samples()
    for k in ("s2w", "bkg"):
        rhat, ess = rank_diagnostics(r.posterior[k])
        assert ess > 500
        assert np.std(post[k]) == pytest.approx(F.errors[k], rel=0.10)
        assert np.std(post[k]) == pytest.approx(best.errors[k], rel=0.10)
        assert abs(np.mean(post[k]) - best.best_fit[k]) < 0.2 * F.errors[k]
    corr = np.corrcoef(post["s2w"], post["bkg"])[0, 1]
    assert corr == pytest.approx(F.covariance[0, 1] / np.sqrt(F.covariance[0, 0] * F.covariance[1, 1]), abs=0.08)


def test_rank_diagnostics_match_arviz(ge):
    az = pytest.importorskip("arviz")
    r = ge["res"]
    from cevnsjax.results import _rank_diagnostics_numpyro

    for k in ("s2w", "bkg"):
        rhat, ess = rank_diagnostics(r.posterior[k])  # ArviZ itself when installed
        assert float(rhat) == pytest.approx(float(az.rhat(r.idata, var_names=[k])[k]), abs=1e-12)
        # the fallback for machines without ArviZ (GPU nodes): same definitions on numpyro.diagnostics
        rhat, ess = _rank_diagnostics_numpyro(r.posterior[k])
        assert float(rhat) == pytest.approx(float(az.rhat(r.idata, var_names=[k])[k]), abs=2e-3)
        assert float(ess) == pytest.approx(float(az.ess(r.idata, var_names=[k], method="bulk")[k]), rel=0.03)


def test_netcdf_and_npz_roundtrip(ge, tmp_path):
    pytest.importorskip("arviz")
    r = ge["res"]
    for name in ("post.nc", "post.npz"):
        path = r.save(tmp_path / name)
        back = PosteriorResult.load(path)
        assert back.attrs == r.attrs
        for g, d in r.groups.items():
            assert set(back.groups[g]) == set(d), g
            for k, v in d.items():
                np.testing.assert_array_equal(back.groups[g][k], v)
    idata = back.idata
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data", "prior", "prior_predictive",
            "posterior_predictive"} <= set(idata.groups())
    with pytest.raises(ValueError, match=r"valid suffixes: .nc"):
        r.save(tmp_path / "post.txt")


def test_summary_and_plots(ge, tmp_path):
    pytest.importorskip("arviz")
    pytest.importorskip("matplotlib")
    r = ge["res"]
    table = r.summary()
    assert list(table.index) == ["s2w", "bkg"] and "r_hat" in table.columns and "ess_bulk" in table.columns
    with pytest.raises(ValueError, match=r"unknown variable\(s\) \['sin2'\].*valid choices: \['bkg', 's2w'\]"):
        r.summary(var_names=["sin2"])
    r.plot_corner(tmp_path / "corner.png", truths={"s2w": 0.2386, "bkg": 1.0})
    r.plot_spectrum(tmp_path / "spec.png", ge["edges"], "obs", xlabel="E_R [keV]", logy=True)
    assert (tmp_path / "corner.png").stat().st_size > 5000 and (tmp_path / "spec.png").stat().st_size > 5000
    with pytest.raises(ValueError, match=r"unknown observed site 'counts'; valid choices: \['obs'\]"):
        r.plot_spectrum(None, ge["edges"], "counts")
    with pytest.raises(ValueError, match="give 19 edges"):
        r.plot_spectrum(None, ge["edges"][:-1], "obs")


def test_run_nuts_argument_errors(ge):
    with pytest.raises(ValueError, match=r"unknown latent site in init_values 's2'.*Did you mean 's2w'.*Valid choices: s2w, bkg"):
        run_nuts(ge["model"], n_obs=ge["n"], init_values={"s2": 0.24})
    with pytest.raises(ValueError, match="valid choices: vectorized, parallel, sequential"):
        run_nuts(ge["model"], n_obs=ge["n"], chain_method="threads")
    with pytest.raises(ValueError, match="num_samples=0 must be a positive integer"):
        run_nuts(ge["model"], n_obs=ge["n"], num_samples=0)
    sites = model_sites(ge["model"], n_obs=ge["n"])
    assert sites["latent"] == ["s2w", "bkg"] and sites["observed"] == ["obs"]


# ------------------------------------------------------------------- simulation-based calibration
def test_interval_coverage_simulation_based_calibration():
    """20 independent replicas (signal strength s, background b; 5 bins) drawn from the prior, fitted
    jointly in one NUTS run (the joint posterior factorises, so each replica's marginal is its own
    posterior). The central 95 % intervals of s and b must cover the truth in >= 34 of 40 cases:
    under perfect calibration the count is ~Binomial(40, 0.95) (replicas independent; s and b of one
    replica weakly dependent), P(X <= 33) = 1.4 %. Also checks chain_method="parallel" (4 fake CPU
    devices in conftest)."""
    R = 20
    S = jnp.array([40.0, 25.0, 15.0, 8.0, 4.0])
    B = jnp.array([5.0, 5.0, 5.0, 5.0, 5.0])
    rng = np.random.default_rng(2024)
    s_true, b_true = rng.uniform(0.2, 3.0, R), rng.uniform(0.2, 3.0, R)
    n = rng.poisson(s_true[:, None] * S + b_true[:, None] * B).astype(float)

    def model(n_obs=None):
        with numpyro.plate("replica", R):
            s = numpyro.sample("s", dist.Uniform(0.0, 5.0))
            b = numpyro.sample("b", dist.Uniform(0.0, 5.0))
        numpyro.sample("obs", dist.Poisson(s[:, None] * S + b[:, None] * B).to_event(2), obs=n_obs)

    res = run_nuts(model, n_obs=n, num_warmup=300, num_samples=400, num_chains=2, seed=3, progress_bar=False,
                   chain_method="parallel", num_prior_samples=0, posterior_predictive=False)
    assert res.num_divergences == 0
    post = res.samples()
    covered = 0
    for k, truth in (("s", s_true), ("b", b_true)):
        lo, hi = np.percentile(post[k], [2.5, 97.5], axis=0)
        covered += int(np.sum((lo <= truth) & (truth <= hi)))
    assert covered >= 34, covered
    assert stats.binom(40, 0.95).cdf(33) < 0.02  # the stated false-alarm rate


# ------------------------------------------------------------------------------ no ArviZ needed
def test_infer_works_without_arviz(tmp_path):
    """GPU machines have jax/numpyro but not ArviZ: importing and using the sampler side must not
    import arviz (it is blocked here) nor matplotlib."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["arviz"] = None  # any 'import arviz' now raises ImportError
        import numpy as np
        import cevnsjax.stats.infer, cevnsjax.results, cevnsjax.stats.fit, cevnsjax.stats.likelihood
        from cevnsjax.results import PosteriorResult
        rng = np.random.default_rng(0)
        r = PosteriorResult({{"posterior": {{"a": rng.normal(size=(2, 200))}},
                             "sample_stats": {{"diverging": np.zeros((2, 200), bool)}}}},
                            {{"latent_sites": ["a"]}}, ess_per_chain=50)
        assert r.converged, r.convergence_report()
        r.save({str(tmp_path / 'x.npz')!r})
        back = PosteriorResult.load({str(tmp_path / 'x.npz')!r})
        assert np.array_equal(back.posterior["a"], r.posterior["a"])
        assert sys.modules["arviz"] is None and "matplotlib" not in sys.modules, sorted(sys.modules)
        print("ok")
    """)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
