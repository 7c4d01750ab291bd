"""Every result type (fit, profile, scan, posterior, unfolding) round-trips through netCDF, and
cevnsjax.results.load dispatches on the file's cevnsjax_kind attribute."""

import numpy as np
import pytest

from cevnsjax import results
from cevnsjax.stats import fit


def _fit_and_profile():
    # chi^2 of a straight line through 3 points (sigma 0.1): analytic errors 0.1/sqrt(2) for the slope
    y = np.array([1.0, 2.1, 2.9])
    obj = lambda p, y_: sum(((p["a"] * x + p["b"] - y_[i]) / 0.1) ** 2 for i, x in enumerate((0.0, 1.0, 2.0)))
    best = fit.minimize(obj, {"a": 0.5, "b": 0.0}, y, bounds={"a": (0, 5)})
    prof = fit.profile(obj, best, "a", np.linspace(0.8, 1.1, 7), y, bounds={"a": (0, 5)})
    return best, prof


def test_fit_and_profile_roundtrip(tmp_path):
    best, prof = _fit_and_profile()
    assert best.errors["a"] == pytest.approx(0.1 / np.sqrt(2), rel=1e-9)
    back = results.load(best.save(tmp_path / "f.nc"))
    assert isinstance(back, results.FitResult)
    assert back.names == best.names and back.free == best.free and back.converged == best.converged
    np.testing.assert_array_equal(back.covariance, best.covariance)
    assert back.best_fit == best.best_fit and back.errors == best.errors and back.minus2lnL == best.minus2lnL
    p2 = results.load(prof.save(tmp_path / "p.nc"))
    assert isinstance(p2, results.ProfileResult)
    np.testing.assert_array_equal(p2.minus2lnL, prof.minus2lnL)
    np.testing.assert_array_equal(p2.nuisance, prof.nuisance)
    assert p2.interval(0.6827) == prof.interval(0.6827)
    import xarray as xr

    with xr.open_dataset(tmp_path / "f.nc") as ds:
        assert ds.attrs["cevnsjax_version"] and ds.attrs["cevnsjax_kind"] == "FitResult"


def test_scan_roundtrip(tmp_path):
    from cevnsjax.stats.scan import run_scan

    obj = lambda v: (v["x"] - 0.3) ** 2 / 0.01 + (v["nu"] - v["x"]) ** 2 / 0.04
    r = run_scan(obj, ["x=lin:0:1:11"], profile={"nu": (0.0, -5.0, 5.0)}, progress=False)
    np.testing.assert_allclose(r.delta_chi2, (r.grid.axes[0].values - 0.3) ** 2 / 0.01, atol=1e-9)
    back = results.load(r.save(tmp_path / "s.nc"))
    np.testing.assert_array_equal(back.chi2, r.chi2)
    np.testing.assert_array_equal(back.nuisances["nu"], r.nuisances["nu"])


def test_posterior_roundtrip(tmp_path):
    pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    res = results.PosteriorResult({"posterior": {"a": rng.normal(size=(2, 40))},
                                   "sample_stats": {"diverging": np.zeros((2, 40), bool)}})
    back = results.load(res.save(tmp_path / "post.nc"))
    assert isinstance(back, results.PosteriorResult)
    np.testing.assert_array_equal(back.posterior["a"], res.posterior["a"])


def test_unfolding_roundtrip(tmp_path):
    from cevnsjax.stats import unfold as U

    scan = U.BetaScan(*(np.arange(3.0) + i for i in range(7)))
    r = U.UnfoldingResult(**{f.name: _dummy(f.name, scan) for f in __import__("dataclasses").fields(U.UnfoldingResult)})
    back = results.load(r.save(tmp_path / "u.nc"))
    assert isinstance(back, U.UnfoldingResult)
    np.testing.assert_array_equal(back.nu_hat, r.nu_hat)
    np.testing.assert_array_equal(back.scan.bias_B_mean, r.scan.bias_B_mean)
    assert back.scenario == r.scenario and back.beta == r.beta and back.n_toys == r.n_toys
    with pytest.raises(ValueError, match="UnfoldingResult"):
        U.UnfoldingProblem.load(tmp_path / "u.nc")


def _dummy(name, scan):
    if name == "scan":
        return scan
    if name == "scenario":
        return "2"
    if name.startswith("band"):
        return np.arange(8.0).reshape(2, 4)
    if name in ("beta", "beta_physical", "beta_bias"):
        return 0.25
    if name in ("n_toys", "seed"):
        return 3
    if name == "nu_edges_MeV":
        return np.arange(5.0)
    return np.arange(4.0) + 0.5
