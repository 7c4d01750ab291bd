"""Likelihood terms against scipy.stats; MLE, Hessian errors, profiles, tests and Fisher matrices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import cevnsjax as cj
from cevnsjax.stats import fit
from cevnsjax.stats.likelihood import (
    asimov,
    gaussian_chi2,
    gaussian_constraint,
    gaussian_log_likelihood,
    lognormal_constraint,
    poisson_deviance,
    poisson_log_likelihood,
)


# ------------------------------------------------------------------------------ likelihood terms
def test_poisson_matches_scipy_and_is_continuous():
    n = np.array([0, 1, 2, 5, 17, 300, 0, 4])
    mu = np.array([0.3, 1.0, 7.5, 4.2, 20.0, 280.5, 1e-3, 1e-2])
    per = jax.vmap(lambda a, b: poisson_log_likelihood(a, b))(n, mu)
    np.testing.assert_allclose(per, stats.poisson.logpmf(n, mu), rtol=1e-12)  # same formula, float64
    dev = 2 * (stats.poisson.logpmf(n, np.maximum(n, 1e-300)) - stats.poisson.logpmf(n, mu))
    np.testing.assert_allclose(poisson_deviance(n, mu), dev.sum(), rtol=1e-12)
    np.testing.assert_allclose(poisson_log_likelihood(n, mu, saturated=True), -0.5 * dev.sum(), rtol=1e-12)
    # continuous in n (Asimov data): lgamma instead of log n!, zero deviance at mu = n
    x = np.array([0.5, 2.7, 13.3])
    ref = x * np.log(mu[:3]) - mu[:3] - __import__("scipy").special.gammaln(x + 1)
    np.testing.assert_allclose(poisson_log_likelihood(x, mu[:3]), ref.sum(), rtol=1e-12)
    assert float(poisson_deviance(x, x)) == pytest.approx(0.0, abs=1e-12)
    # keep a batch axis
    batch = poisson_log_likelihood(np.stack([n, n]), np.stack([mu, mu]), axis=-1)
    np.testing.assert_allclose(batch, [per.sum()] * 2, rtol=1e-12)


@pytest.mark.parametrize("n,mu", [(0.0, 0.0), (0.0, 1e-320), (5.0, 0.0), (0.0, 3.0), (3.0, 1e-300)])
def test_poisson_no_nan_at_zero(n, mu):
    for sat in (False, True):
        f = lambda n_, mu_: poisson_log_likelihood(n_, mu_, saturated=sat)
        v, (gn, gm) = jax.value_and_grad(f, argnums=(0, 1))(n, mu)
        assert np.isfinite(v) and np.isfinite(gn) and np.isfinite(gm), (n, mu, sat, v, gn, gm)
    assert float(poisson_log_likelihood(0.0, 0.0, saturated=True)) == 0.0


def test_gaussian_terms_match_scipy():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(5, 5))
    cov = A @ A.T + 5 * np.eye(5)
    o, e = rng.normal(size=5), rng.normal(size=5)
    sig = np.abs(rng.normal(size=5)) + 0.3
    np.testing.assert_allclose(gaussian_log_likelihood(o, e, cov=cov, normalized=True),
                               stats.multivariate_normal(e, cov).logpdf(o), rtol=1e-12)
    np.testing.assert_allclose(gaussian_log_likelihood(o, e, sigma=sig, normalized=True),
                               stats.norm(e, sig).logpdf(o).sum(), rtol=1e-12)
    np.testing.assert_allclose(gaussian_chi2(o, e, cov=cov), (o - e) @ np.linalg.solve(cov, o - e), rtol=1e-12)
    np.testing.assert_allclose(gaussian_chi2(o, e, cov=np.diag(sig**2)), gaussian_chi2(o, e, sigma=sig), rtol=1e-12)
    x = np.array([0.7, 1.0, 1.4])
    np.testing.assert_allclose(gaussian_constraint(x, 1.0, 0.2, normalized=True), stats.norm(1.0, 0.2).logpdf(x).sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(lognormal_constraint(x, 1.1, 0.15, normalized=True),
                               stats.lognorm(s=0.15, scale=1.1).logpdf(x).sum(), rtol=1e-12)
    # the un-normalised Gaussian term differs from the density by a constant only
    d = [float(gaussian_constraint(v, 1.0, 0.2) - gaussian_constraint(v, 1.0, 0.2, normalized=True)) for v in x]
    np.testing.assert_allclose(d, d[0], rtol=1e-12)
    g = jax.grad(lambda v: lognormal_constraint(v, 1.0, 0.1))(0.0)  # non-positive value: finite
    assert np.isfinite(g)
    with pytest.raises(ValueError, match="exactly one of sigma"):
        gaussian_chi2(o, e)


def test_asimov_stops_gradients():
    mu = jnp.array([3.0, 4.5])
    assert np.all(asimov(mu) == mu)
    g = jax.grad(lambda s: poisson_log_likelihood(asimov(s * mu), s * mu, saturated=True))(1.3)
    assert float(g) == pytest.approx(0.0, abs=1e-12)  # Asimov: the fit sits at the truth


# --------------------------------------------------------------------------- a CEvNS-like model
@pytest.fixture(scope="module")
def ge():
    """Ge at Dresden-II: SM CEvNS counts in 18 recoil bins (0.2-2 keV_nr) + a flat background."""
    kb = cj.prepare("Ge", cj.Reactor.dresden_ii(), bin_edges_keV=np.linspace(0.2, 2.0, 19))
    expo = 2.924 * 96.4 * 0.01  # kg day, scaled so the background matters
    flat = jnp.full(18, 20.0)

    def mu(p):
        sig = cj.expected_counts(cj.PhysicsParams(sin2_theta_w=p["s2w"]), kb, expo)
        return sig * p.get("norm", 1.0) + p["bkg"] * flat

    traces = []

    def nll2(p, n):
        traces.append(1)  # runs only while JAX traces
        return -2.0 * poisson_log_likelihood(n, mu(p), saturated=True)  # -2 ln L

    def nll3(p, n):
        return nll2(p, n) - 2.0 * gaussian_constraint(p["norm"], 1.0, 0.1)

    truth = {"s2w": 0.2386, "bkg": 1.0}
    n = np.random.default_rng(7).poisson(np.asarray(mu(truth))).astype(float)
    bounds = {"s2w": (0.0, 1.0), "bkg": (0.0, None), "norm": (0.0, None)}
    return dict(kb=kb, mu=mu, nll2=nll2, traces=traces, nll3=nll3, n=n, truth=truth, bounds=bounds)


B2 = {"s2w": (0.0, 1.0), "bkg": (0.0, None)}  # the same bounds and n_starts reuse the compiled optimiser


@pytest.fixture(scope="module")
def fit2(ge):
    return fit.minimize(ge["nll2"], {"s2w": 0.3, "bkg": 2.0}, ge["n"], bounds=B2, n_starts=3)


def test_mle_matches_brute_force_grid(ge, fit2):
    assert fit2.converged, fit2
    s = np.linspace(0.20, 0.28, 161)  # step 5e-4
    b = np.linspace(0.8, 1.2, 161)  # step 2.5e-3
    S, B = np.meshgrid(s, b, indexing="ij")
    grid = jax.jit(jax.vmap(lambda a, c: ge["nll2"]({"s2w": a, "bkg": c}, ge["n"])))(S.ravel(), B.ravel())
    i, j = np.unravel_index(np.argmin(grid), S.shape)
    assert abs(fit2.best_fit["s2w"] - s[i]) <= s[1] - s[0]
    assert abs(fit2.best_fit["bkg"] - b[j]) <= b[1] - b[0]
    assert fit2.minus2lnL <= float(np.min(grid)) + 1e-9
    # -2 lnL with the saturated constant is a chi^2-like goodness of fit: 16 dof here
    assert 0 < fit2.minus2lnL < stats.chi2.isf(1e-4, 16)


def test_hessian_errors_match_finite_differences(ge, fit2):
    x0 = np.array([fit2.best_fit["s2w"], fit2.best_fit["bkg"]])
    f = lambda x: float(ge["nll2"]({"s2w": x[0], "bkg": x[1]}, ge["n"]))
    h = np.array([1e-4, 1e-3])
    H = np.zeros((2, 2))
    for a in range(2):
        for c in range(2):
            ea, ec = np.eye(2)[a] * h[a], np.eye(2)[c] * h[c]
            H[a, c] = (f(x0 + ea + ec) - f(x0 + ea - ec) - f(x0 - ea + ec) + f(x0 - ea - ec)) / (4 * h[a] * h[c])
    cov = np.linalg.inv(H / 2)  # H: Hessian of -2 ln L
    # central differences: truncation O(h^2 f'''') and rounding ~1e-16 |f| / h^2 -> ~1e-5 relative
    np.testing.assert_allclose(fit2.covariance, cov, rtol=1e-4)
    np.testing.assert_allclose(list(fit2.errors.values()), np.sqrt(np.diag(cov)), rtol=1e-4)


def test_linear_gaussian_analytic_covariance():
    rng = np.random.default_rng(11)
    A = rng.normal(size=(12, 3))
    L = rng.normal(size=(12, 12)) * 0.1
    C = L @ L.T + np.diag(rng.uniform(0.5, 1.5, 12))
    x_true = np.array([1.0, -2.0, 0.5])
    y = A @ x_true + rng.multivariate_normal(np.zeros(12), C)
    nll = lambda p, y_: gaussian_chi2(y_, A @ p["x"], cov=C)  # -2 ln L
    # two-sided, open and upper-only bounds (projection keeps the problem quadratic)
    bounds = {"x": (np.array([-50.0, -np.inf, -np.inf]), np.array([50.0, np.inf, 40.0]))}
    res = fit.minimize(nll, {"x": np.zeros(3)}, y, bounds=bounds)
    Ci = np.linalg.inv(C)
    cov = np.linalg.inv(A.T @ Ci @ A)
    xhat = cov @ A.T @ Ci @ y
    assert res.converged, res
    np.testing.assert_allclose(res.params["x"], xhat, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.covariance, cov, rtol=1e-6)  # (H/2)^-1 of chi^2
    assert res.names == ("x[0]", "x[1]", "x[2]")
    # Gaussian Fisher matrix J^T C^-1 J is the same inverse covariance
    F = fit.fisher_matrix(lambda p: A @ p["x"], {"x": xhat}, cov=C)
    np.testing.assert_allclose(F.covariance, cov, rtol=1e-10)


@pytest.fixture(scope="module")
def prof3(ge):
    """3-parameter fit (sin^2 theta_W, background, 10 %-constrained flux norm) and a 1-D profile."""
    b = ge["bounds"]
    best = fit.minimize(ge["nll3"], {"s2w": 0.25, "bkg": 1.2, "norm": 1.0}, ge["n"], bounds=b)
    s_hat, e = best.best_fit["s2w"], best.errors["s2w"]
    grid = s_hat + e * np.linspace(-3, 3, 25)
    grid[12] = s_hat  # the MLE itself is on the grid
    return best, fit.profile(ge["nll3"], best, "s2w", grid, ge["n"], bounds=b)


def test_profile_minimum_equals_mle(ge, prof3):
    best, prof = prof3
    b = ge["bounds"]
    assert best.converged, best
    s_hat, e = best.best_fit["s2w"], best.errors["s2w"]
    assert prof.converged.all()
    assert prof.minus2lnL[12] == pytest.approx(best.minus2lnL, abs=1e-8)
    assert np.all(prof.minus2lnL >= best.minus2lnL - 1e-9)
    np.testing.assert_allclose(prof.nuisance[12], [best.best_fit["bkg"], best.best_fit["norm"]], rtol=1e-5)
    # near-Gaussian: the Delta chi^2 = 1 interval matches the Hessian error (to ~ the skewness, few %)
    lo, hi = prof.interval(0.6827)
    assert (hi - lo) / 2 == pytest.approx(e, rel=0.05)
    # 2-D profile over (s2w, bkg), the third parameter profiled; grid centre is the MLE
    b_hat, eb = best.best_fit["bkg"], best.errors["bkg"]
    g1, g2 = s_hat + e * np.array([-2, -1, 0, 1, 2.0]), b_hat + eb * np.array([-2, -1, 0, 1, 2.0])
    g1[2], g2[2] = s_hat, b_hat
    pts = np.stack([m.ravel() for m in np.meshgrid(g1, g2, indexing="ij")], -1)  # (25, 2) points
    p2 = fit.profile(ge["nll3"], best, ["s2w", "bkg"], pts, ge["n"], bounds=b)
    assert p2.minus2lnL.shape == (25,) and p2.converged.all()
    assert p2.minus2lnL[12] == pytest.approx(best.minus2lnL, abs=1e-8)
    assert p2.minimum() == {"s2w": s_hat, "bkg": b_hat}
    # Gaussian value of the 2-D Delta chi^2 at (s_hat +- sigma_s, b_hat): 1 / (1 - rho_sb^2); the two
    # sides differ by the skewness (rate ~ Q_W^2, s2w partly degenerate with the norm), so average them
    rho = best.correlation[0, 1]
    d2 = p2.delta_chi2.reshape(5, 5)
    assert 0.5 * (d2[3, 2] + d2[1, 2]) == pytest.approx(1 / (1 - rho**2), rel=0.03)


def test_fisher_equals_asimov_hessian_and_widths(ge):
    truth = ge["truth"]
    F = fit.fisher_matrix(ge["mu"], truth)
    mu0 = ge["mu"](truth)
    H, _ = fit.hessian_covariance(lambda p: -2 * poisson_log_likelihood(asimov(mu0), ge["mu"](p)), truth)
    np.testing.assert_allclose(F.matrix, H / 2, rtol=1e-8)
    res = fit.minimize(ge["nll2"], {"s2w": 0.25, "bkg": 1.3}, np.asarray(mu0), bounds=B2, n_starts=3)  # cached
    np.testing.assert_allclose([res.best_fit["s2w"], res.best_fit["bkg"]], [0.2386, 1.0], rtol=1e-6)
    np.testing.assert_allclose(list(res.errors.values()), list(F.errors.values()), rtol=1e-6)
    assert all(F.conditional[k] <= F.errors[k] for k in F.names)
    # constraint terms add their Hessian: a 10 % normalisation nuisance
    F3 = fit.fisher_matrix(ge["mu"], dict(truth, norm=1.0), constraint_nll=lambda p: -gaussian_constraint(p["norm"], 1, 0.1))
    assert F3.errors["s2w"] > F.errors["s2w"]  # the normalisation is partly degenerate with sin^2 theta_W
    assert F3.errors["norm"] < 0.1


def test_significance_and_nested_test(ge, fit2):
    assert fit.significance(9.0, 1) == 3.0
    for d, k in [(4.0, 2), (11.8, 3), (30.0, 5)]:
        ref = stats.norm.isf(stats.chi2.sf(d, k) / 2)
        assert fit.significance(d, k) == pytest.approx(ref, rel=1e-9)
        assert fit.p_value(d, k) == pytest.approx(stats.chi2.sf(d, k), rel=1e-12)
    assert fit.significance(3000.0, 2) > 50 and np.isfinite(fit.significance(3000.0, 2))
    with pytest.raises(ValueError, match="positive integer"):
        fit.significance(1.0, 0)
    # null hypothesis sin^2 theta_W = 0.30 (background profiled) against the free fit
    lrt = fit.likelihood_ratio_test(ge["nll2"], {"s2w": 0.25, "bkg": 1.0}, {"s2w": 0.30}, ge["n"], bounds=B2, n_starts=3)
    assert lrt.null.free_names == ("bkg",) and lrt.null.best_fit["s2w"] == 0.30
    assert lrt.alt.minus2lnL == pytest.approx(fit2.minus2lnL, abs=1e-9)
    t = fit.compare(lrt.null, fit2)
    assert t.dof == 1 and t.delta_chi2 == pytest.approx(lrt.null.minus2lnL - fit2.minus2lnL)
    assert t.delta_chi2 == pytest.approx(lrt.delta_chi2, rel=1e-6)
    assert t.significance == pytest.approx(np.sqrt(t.delta_chi2))
    with pytest.raises(ValueError, match="more free parameters"):
        fit.compare(fit2, lrt.null)


def test_multistart_finds_global_minimum_and_bounds():
    # double well with the start in the wrong (higher) basin
    nll = lambda p: (p["x"] ** 2 - 1.0) ** 2 + 0.3 * p["x"] + 0.0 * p["y"] ** 2 + (p["y"] - 0.5) ** 2
    many = fit.minimize(nll, {"x": 1.0, "y": 0.0}, bounds={"x": (-3, 3)}, n_starts=8, hessian=False)
    # start 0 is the given point: it ends in the local minimum near x = +0.96
    assert many.start_minus2lnL[0] > many.minus2lnL + 0.5 and many.best_fit["x"] == pytest.approx(-1.036, abs=2e-3)
    assert len(many.start_minus2lnL) == 8
    # an MLE at a bound: reported, flagged, not a crash
    at = fit.minimize(lambda p: (p["s"] + 1.0) ** 2, {"s": 1.0}, bounds={"s": (0.0, None)}, hessian=False)
    assert at.best_fit["s"] < 1e-4 and "bound" in at.message


def test_fit_and_profile_results_roundtrip_netcdf(tmp_path, fit2, prof3):
    from cevnsjax import results

    fit2.save(tmp_path / "fit.nc")
    back = results.load(tmp_path / "fit.nc")
    assert isinstance(back, fit.FitResult) and back.minus2lnL == fit2.minus2lnL
    assert back.names == fit2.names and back.converged == fit2.converged and back.n_iter == fit2.n_iter
    np.testing.assert_array_equal(back.values, fit2.values)
    np.testing.assert_array_equal(back.covariance, fit2.covariance)
    assert back.params == fit2.params and back.errors == fit2.errors
    prof = prof3[1]
    prof.save(tmp_path / "p.nc")
    p2 = results.load(tmp_path / "p.nc")
    np.testing.assert_array_equal(p2.minus2lnL, prof.minus2lnL)
    np.testing.assert_array_equal(p2.values, prof.values)
    assert p2.names == ("s2w",) and p2.interval() == prof.interval()
    with pytest.raises(ValueError, match="ProfileResult"):
        fit.FitResult.load(tmp_path / "p.nc")


def test_no_recompile_with_new_data(ge, fit2):
    k = len(ge["traces"])  # fit2 compiled the optimiser and the Hessian for these settings
    res = fit.minimize(ge["nll2"], {"s2w": 0.26, "bkg": 1.1}, ge["n"] + 1.0, bounds=B2, n_starts=3)
    assert len(ge["traces"]) == k and res.converged


def test_errors_name_valid_choices():
    nll = lambda p: p["a"] ** 2 + p["b"] ** 2
    with pytest.raises(ValueError, match=r"unknown bounded parameter 'c'.*Valid choices: a, b"):
        fit.minimize(nll, {"a": 1.0, "b": 1.0}, bounds={"c": (0, 1)})
    with pytest.raises(ValueError, match="lo < hi"):
        fit.minimize(nll, {"a": 1.0, "b": 1.0}, bounds={"a": (2, 1)})
    with pytest.raises(ValueError, match="outside its bounds"):
        fit.minimize(nll, {"a": 5.0, "b": 1.0}, bounds={"a": (0, 1)})
    with pytest.raises(ValueError, match=r"unknown fixed parameter 'z'.*Valid choices: a, b"):
        fit.minimize(nll, {"a": 1.0, "b": 1.0}, fixed=["z"])
    with pytest.raises(TypeError, match="dict"):
        fit.minimize(nll, [1.0, 2.0])


def test_float32_likelihood_agrees_with_float64():
    # the saturated Poisson term is one logarithm of mu/n per bin (no cancellation of n ln n terms),
    # and n - mu is formed before adding, so float32 keeps ~1e-6 relative accuracy at 1e4 counts per bin
    n = np.array([0.0, 3.0, 60.0, 1.2e4])
    mu = np.array([0.5, 2.5, 61.0, 1.19e4])
    d64 = poisson_deviance(n, mu)
    d32 = poisson_deviance(n.astype(np.float32), mu.astype(np.float32))
    assert d32.dtype == jnp.float32
    np.testing.assert_allclose(float(d32), float(d64), rtol=1e-5)
    g = jax.grad(lambda m: poisson_log_likelihood(n.astype(np.float32), m, saturated=True))(mu.astype(np.float32))
    assert g.dtype == jnp.float32 and np.all(np.isfinite(g))


def test_allowed_intervals_finds_every_island():
    # d(x) = (x^2 - 4)^2 / 4: two islands |x^2 - 4| < 2 sqrt(thr) around x = -2 and x = 2; exact ends
    # sqrt(4 -+ 2 sqrt(thr)). Linear interpolation on a 0.001 grid: error <= h^2 max|d''| / (8 |d'|) ~ 1e-6.
    from cevnsjax.stats.fit import allowed_intervals

    x = np.linspace(-3.0, 3.0, 6001)
    d = (x**2 - 4.0) ** 2 / 4.0
    thr = 2.705543454095404
    a, b = np.sqrt(4 - 2 * np.sqrt(thr)), np.sqrt(4 + 2 * np.sqrt(thr))
    got = allowed_intervals(x, d, thr)
    np.testing.assert_allclose(got, [[-b, -a], [a, b]], atol=1e-5)
    # an island that reaches the grid end ends there; a crossing function replaces the interpolation
    left = x <= 2.0  # the right island is cut at its centre: it ends at the last grid point
    last = allowed_intervals(x[left], d[left], thr)[-1]
    assert last[1] == float(x[left][-1]) and abs(last[0] - a) < 1e-5
    assert allowed_intervals(x, d, 0.0) == []
    seen = []
    exact = allowed_intervals(x, d, thr, crossing=lambda i, o: seen.append((i, o)) or float(x[i]))
    assert len(seen) == 4 and all(abs(i - o) == 1 and d[i] < thr <= d[o] for i, o in seen)
    assert exact[0][0] == x[seen[0][0]]


def test_no_retrace_for_new_fixed_set_or_profile_value(ge, fit2):
    # fixed parameters, bounds and profile values are data of the one compiled solver
    k = len(ge["traces"])
    held = fit.minimize(ge["nll2"], {"s2w": 0.24, "bkg": 1.0}, ge["n"], bounds=B2, n_starts=3, fixed=["s2w"])
    held2 = fit.minimize(ge["nll2"], {"s2w": 0.24, "bkg": 1.0}, ge["n"], bounds=B2, n_starts=3, fixed={"bkg": 1.1})
    assert len(ge["traces"]) == k
    assert held.free_names == ("bkg",) and held2.free_names == ("s2w",) and held2.best_fit["bkg"] == 1.1
    assert held.minus2lnL >= fit2.minus2lnL - 1e-9 and held2.minus2lnL >= fit2.minus2lnL - 1e-9
    fit.profile(ge["nll2"], fit2, "s2w", [0.22, 0.24], ge["n"], bounds=B2)
    k = len(ge["traces"])
    p = fit.profile(ge["nll2"], fit2, "bkg", [0.9, 1.0, 1.1], ge["n"], bounds=B2)
    assert len(ge["traces"]) == k and p.converged.all()
