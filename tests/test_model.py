"""JointModel: one description drives NumPyro, the likelihood and fits; joint experiments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cevnsjax as cj
from cevnsjax.detector.backgrounds import Flat
from cevnsjax.detector.quenching import ModifiedLindhard
from cevnsjax.detector.response import GeResolution
from cevnsjax.experiment import Experiment, ExperimentParams, Observable, RecoilGrid
from cevnsjax.stats.infer import LogNormal, Uniform
from cevnsjax.stats.model import Analysis, JointModel


def _reactor_exp(name="ge", mass=5.0, days=200.0):
    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(4),
                          quenching=ModifiedLindhard(32, 72.63, k=0.157, q=0.0), resolution=GeResolution(0.03, 0.11, 2.96e-3),
                          backgrounds=(Flat(2.0, name="flat"),))
    return Experiment(name, "Ge", mass, days, cj.Reactor.conus(), Observable("E_ee_keV", tuple(np.linspace(0.15, 0.6, 16))),
                      RecoilGrid(0.3, 3.0, 60, 2), th)


@pytest.fixture(scope="module")
def model():
    ana = Analysis(_reactor_exp(), {"flux_norm": LogNormal(1.0, 0.05), "bkg.flat.rate": Uniform(0.0, 10.0)})
    return JointModel([ana], shared={"sin2_theta_w": Uniform(0.1, 0.4)})


def test_nll_is_deviance_and_minimum_at_truth_on_asimov(model):
    truth = {"sin2_theta_w": 0.2386, "flux_norm": 1.0, "bkg.flat.rate": 2.0}
    obs = model.asimov(truth)
    # on Asimov data the deviance is zero at the truth and every constraint is at its centre
    np.testing.assert_allclose(float(model.minus2lnL(truth, obs)), 0.0, atol=1e-9)
    fit = model.fit(obs=obs, n_starts=3)
    assert fit.converged
    for k, v in truth.items():
        np.testing.assert_allclose(fit.params[k], v, rtol=2e-4, atol=1e-6)


def test_mle_matches_brute_force_grid(model):
    # a Poisson realisation; fix the background, scan (sin2, flux_norm) on a grid and compare
    truth = {"sin2_theta_w": 0.2386, "flux_norm": 1.0, "bkg.flat.rate": 2.0}
    mu = model.asimov(truth)["ge"]
    obs = {"ge": jnp.asarray(np.random.default_rng(3).poisson(np.asarray(mu)), float)}
    fit = model.fit(obs=obs, fixed={"bkg.flat.rate": 2.0}, n_starts=3)
    s = np.linspace(fit.params["sin2_theta_w"] - 0.02, fit.params["sin2_theta_w"] + 0.02, 41)
    f = np.linspace(fit.params["flux_norm"] - 0.1, fit.params["flux_norm"] + 0.1, 41)
    S, F = np.meshgrid(s, f, indexing="ij")
    grid = jax.vmap(lambda a, b: model.minus2lnL({"sin2_theta_w": a, "flux_norm": b, "bkg.flat.rate": 2.0}, obs))(
        jnp.asarray(S.ravel()), jnp.asarray(F.ravel()))
    i = int(np.argmin(np.asarray(grid)))
    # the grid minimum lies within one grid step of the MLE and is not below it
    assert abs(S.ravel()[i] - fit.params["sin2_theta_w"]) <= s[1] - s[0]
    assert abs(F.ravel()[i] - fit.params["flux_norm"]) <= f[1] - f[0]
    assert float(grid[i]) >= fit.minus2lnL - 1e-9


def test_numpyro_model_and_nll_agree(model):
    # log density of the NumPyro model = -(minus2lnL)/2 - priors' normalisation (+ Poisson factorials):
    # the difference between two parameter points must agree with half the -2 ln L difference.
    from numpyro.infer.util import log_density

    obs = model.asimov({"sin2_theta_w": 0.2386, "flux_norm": 1.0, "bkg.flat.rate": 2.0})
    a = {"sin2_theta_w": 0.23, "flux_norm": 1.0, "bkg.flat.rate": 2.0}
    b = {"sin2_theta_w": 0.25, "flux_norm": 1.0, "bkg.flat.rate": 2.0}
    la = log_density(model, (), {"obs": obs}, a)[0]
    lb = log_density(model, (), {"obs": obs}, b)[0]
    np.testing.assert_allclose(float(la - lb), 0.5 * float(model.minus2lnL(b, obs) - model.minus2lnL(a, obs)), rtol=1e-9)


def test_joint_model_shares_physics_and_names_locals():
    a1 = Analysis(_reactor_exp("ge1"), {"bkg.flat.rate": Uniform(0, 10)})
    a2 = Analysis(_reactor_exp("ge2", mass=2.0), {"bkg.flat.rate": Uniform(0, 10)})
    m = JointModel([a1, a2], shared={"g_zprime": Uniform(0, 1e-4)})
    assert set(m.priors) == {"g_zprime", "ge1:bkg.flat.rate", "ge2:bkg.flat.rate"}
    truth = {"g_zprime": 2e-5, "ge1:bkg.flat.rate": 1.0, "ge2:bkg.flat.rate": 3.0}
    obs = m.asimov(truth)
    np.testing.assert_allclose(float(m.minus2lnL(truth, obs)), 0.0, atol=1e-9)
    assert float(m.minus2lnL({**truth, "g_zprime": 0.0}, obs)) > 0


def test_bad_names_and_priors():
    with pytest.raises(ValueError, match=r"unknown parameter 'sin2_thetaw'.*Did you mean 'sin2_theta_w'"):
        JointModel([Analysis(_reactor_exp(), {})], shared={"sin2_thetaw": Uniform(0.1, 0.3)})
    with pytest.raises(ValueError, match="lo < hi"):
        Uniform(0.3, 0.1)
    with pytest.raises(ValueError, match="prior kind"):
        Analysis(_reactor_exp(), {"k": ("flat", 0, 1)})


def test_nuts_recovers_truth_quickly(model):
    obs = model.asimov({"sin2_theta_w": 0.2386, "flux_norm": 1.0, "bkg.flat.rate": 2.0})
    res = model.sample(obs=obs, num_warmup=150, num_samples=150, num_chains=2, progress_bar=False,
                       num_prior_samples=0, posterior_predictive=False)
    post = res.groups["posterior"]
    m, s = float(np.mean(post["sin2_theta_w"])), float(np.std(post["sin2_theta_w"]))
    assert abs(m - 0.2386) < 3 * s  # Asimov truth within 3 posterior sigma


def test_fit_profile_scan_agree_and_do_not_retrace(model, tmp_path):
    """The one optimiser core: JointModel.fit with a fixed value, .profile and .scan give the same
    profiled -2 ln L at the same points (1e-6), and a new fixed set / profile value does not retrace."""
    from cevnsjax.stats.scan import Axis, Grid

    truth = {"sin2_theta_w": 0.2386, "flux_norm": 1.0, "bkg.flat.rate": 2.0}
    mu = model.asimov(truth)["ge"]
    obs = {"ge": jnp.asarray(np.random.default_rng(5).poisson(np.asarray(mu)), float)}
    axis = Axis("sin2_theta_w", "lin", 0.22, 0.26, 5)
    best = model.fit(obs=obs)
    assert best.converged, best
    prof = model.profile("sin2_theta_w", axis.values, obs=obs, best=best)
    scan = model.scan(Grid([axis]), obs=obs, progress=False, newton_iters=30)
    fits = [model.fit(obs=obs, fixed={"sin2_theta_w": v}).minus2lnL for v in axis.values]
    np.testing.assert_allclose(prof.minus2lnL, fits, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scan.chi2, fits, rtol=0, atol=1e-6)
    assert set(scan.nuisances) == {"flux_norm", "bkg.flat.rate"}  # profile=None: every other free parameter
    assert prof.converged.all() and np.all(prof.delta_chi2 >= -1e-9)
    # trace counting: a Python side effect in the likelihood runs only while JAX traces it
    fresh = JointModel([Analysis(_reactor_exp(), {"flux_norm": LogNormal(1.0, 0.05), "bkg.flat.rate": Uniform(0.0, 10.0)})],
                       shared={"sin2_theta_w": Uniform(0.1, 0.4)})
    calls = []
    orig = fresh.minus2lnL
    fresh.minus2lnL = lambda values, obs=None: calls.append(1) or orig(values, obs)
    first = fresh.fit(obs=obs, fixed=["flux_norm"])
    n = len(calls)
    assert n > 0 and first.free_names == ("sin2_theta_w", "bkg.flat.rate")
    fresh.fit(obs=obs, fixed={"bkg.flat.rate": 1.5})
    fresh.fit(obs=obs, fixed=["sin2_theta_w", "flux_norm"])
    fresh.profile("sin2_theta_w", axis.values[:2], obs=obs, best=best)
    m = len(calls)
    fresh.profile("sin2_theta_w", axis.values[2:4], obs=obs, best=best)
    assert m == n and len(calls) == m  # no new trace for new fixed sets or profile values


def test_gaussian_scan_uses_residuals_and_agrees_with_fits(data_dir):
    """A Gaussian model (Dresden-II): sum(residuals^2) is minus2lnL; JointModel.scan profiles the
    background by Gauss-Newton with the signal computed once per grid point, and lands on the
    profiled -2 ln L of fits with the grid value fixed (1e-6) and of the exact-Hessian scan."""
    from cevnsjax.analyses.dresden_ii import build_model
    from cevnsjax.stats.scan import Axis, Grid

    model = build_model(None)  # q free, k fixed, 7 background nuisances (a_M constrained N(1, 0.03))
    assert model.gaussian() and not JointModel([Analysis(_reactor_exp(), {})]).gaussian()
    vals = model.init_values() | {"q": -1e-4, "bkg.dresden_ii.a_M": 1.02}
    r = model.residuals(vals)
    assert r.shape == (131,)  # 130 bins + the a_M constraint
    np.testing.assert_allclose(float(jnp.sum(r**2)), float(model.minus2lnL(vals)), rtol=1e-13)
    bkg = [k for k in model.priors if k.startswith("bkg.")]
    assert all(model.is_background(k) for k in bkg) and not model.is_background("q")
    split = model.scan_objective(profile=bkg)
    assert split.hessian == "gauss-newton" and split.precompute is not None
    assert model.scan_objective(profile=bkg + ["q"]).precompute is None  # q changes the signal
    poisson = JointModel([Analysis(_reactor_exp(), {"bkg.flat.rate": Uniform(0.0, 10.0)})])
    assert poisson.scan_objective(poisson.asimov(), profile=["bkg.flat.rate"]).hessian == "exact"

    axis = Axis("q", "lin", -3e-4, 1e-4, 5)
    fast = model.scan(Grid([axis]), progress=False)
    exact = model.scan(Grid([axis]), progress=False, solver="exact", newton_iters=60, coarse_iters=100)
    fits = [model.fit(fixed={"q": v}).minus2lnL for v in axis.values]
    assert fast.converged.all() and fast.attrs["fingerprint"].startswith("cevnsjax.stats.model.JointModel.residuals")
    np.testing.assert_allclose(fast.chi2, fits, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.chi2, exact.chi2, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="solver='newton'"):
        model.scan(Grid([axis]), progress=False, solver="newton")
