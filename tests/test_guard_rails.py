"""Guard rails on the physics (issue 13): compound quenching per nucleus, the reactor flux below
2 MeV, and silence on the shipped presets."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import cevnsjax as cj
from cevnsjax.detector.per_nucleus import PerNucleusQuenching
from cevnsjax.detector.quenching import Lindhard, lindhard_k
from cevnsjax.experiment import Experiment, ExperimentParams, GaussianResolution, Observable, RecoilGrid, predict
from cevnsjax.io.spec import SpecError, experiment_from_spec, load_preset, preset_names
from cevnsjax.physics.nuclei import ELEMENTS, Target
from cevnsjax.rates import FluxValidityWarning, binned_rate, prepare
from cevnsjax.sources import PionDAR, Reactor

DAR = PionDAR.coherent_csi_2017()


def _mean_A(el):
    return float(sum(i.abundance * i.atomic_mass_u for i in ELEMENTS[el]))


def _exp(formula, mass, quench, resolution, edges, grid=RecoilGrid(0.5, 300.0, 400, 4), smearing="exact"):
    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(len(DAR.components())), quenching=quench,
                          resolution=resolution)
    return Experiment("t", formula, mass, 10.0, DAR, Observable("E_ee_keV", tuple(edges), smearing=smearing), grid, th)


@pytest.mark.parametrize("resolution,smearing", [(GaussianResolution(0.3, 0.05), "exact"),
                                                 (GaussianResolution(0.3, 0.05), "grid"), (None, "exact")])
def test_compound_quenching_is_the_sum_of_single_element_experiments(resolution, smearing):
    """NaI in keVee: Na recoils quenched with Lindhard(11, 22.99), I recoils with Lindhard(53, 126.90).
    Independent computation: a pure-Na and a pure-I detector holding the same numbers of nuclei (mass
    x element mass fraction), each through the single-element path. Same recoil nodes with a
    resolution (agreement 1e-10); without one the NaI grid is split at the kinks of both nuclei and
    the cumulative interpolation differs at the 1e-5 level."""
    edges = np.linspace(1.0, 15.0, 15)
    nai = Target.from_formula("NaI")
    frac = {el: sum(a * i.atomic_mass_u for a, i in zip(nai.atoms_per_molecule, nai.isotopes) if i.element == el)
            / nai.molar_mass_g for el in ("Na", "I")}
    q = PerNucleusQuenching.lindhard("NaI")
    assert q.elements == ("Na", "I")
    np.testing.assert_allclose([q.models[0].Z, q.models[0].A, q.models[1].Z, q.models[1].A],
                               [11, 22.98977, 53, 126.90447], rtol=1e-7)
    e = _exp("NaI", 14.6, q, resolution, edges, smearing=smearing)
    total = np.asarray(predict(e.defaults, e.prepare()).signal)
    parts = []
    for el in ("Na", "I"):
        s = _exp(el, 14.6 * frac[el], Lindhard(ELEMENTS[el][0].Z, _mean_A(el)), resolution, edges, smearing=smearing)
        parts.append(np.asarray(predict(s.defaults, s.prepare()).signal))
    np.testing.assert_allclose(total, parts[0] + parts[1], rtol=1e-10 if resolution is not None else 2e-5)
    # and it is not the old answer (every nucleus quenched as iodine): where Na recoils dominate (high
    # E_ee) the two differ by > 5%
    with pytest.warns(UserWarning, match=r"one Lindhard model \(Z=53, A=126.904\) quenches every nucleus of 'NaI'"):
        old = _exp("NaI", 14.6, Lindhard(53.0, _mean_A("I")), resolution, edges, smearing=smearing)
    old_counts = np.asarray(predict(old.defaults, old.prepare()).signal)
    assert np.max(np.abs(total / old_counts - 1.0)) > 0.05


def _nai_spec(**quench):
    return {"name": "nai", "target": {"formula": "NaI", "mass_kg": 14.6}, "exposure": {"live_days": 100.0},
            "source": {"type": "pion_dar", "preset": "coherent_csi_2017"},
            "detector": {"observable": "E_ee_keV", "bins": {"start": 1.0, "stop": 15.0, "n": 14},
                         "recoil_grid": {"min_keV": 0.5, "max_keV": 300.0},
                         "resolution": {"model": "gaussian", "sigma0": 0.3},
                         "quenching": {"model": "lindhard", **quench}}}


def test_spec_compound_lindhard_quenches_each_nucleus():
    q = experiment_from_spec(_nai_spec()).defaults.quenching
    assert isinstance(q, PerNucleusQuenching)
    np.testing.assert_allclose([m.k_value for m in q.models], [lindhard_k(11, 22.98977), lindhard_k(53, 126.90447)],
                               rtol=1e-6)
    # an explicit Z, A keeps one model for every nucleus (the user's choice)
    with pytest.warns(UserWarning, match="quenches every nucleus"):
        one = experiment_from_spec(_nai_spec(Z=53, A=126.9)).defaults.quenching
    assert isinstance(one, Lindhard) and one.Z == 53
    # a single k for a compound is ambiguous
    with pytest.raises(SpecError, match=r"k = 0.15 is ambiguous for the compound 'NaI'.*Na: 0\.\d+, I: 0\.\d+"):
        experiment_from_spec(_nai_spec(k=0.15))
    spec = _nai_spec()
    spec["detector"]["quenching"] = {"model": "modified_lindhard", "k": 0.15, "q": -1e-4}
    with pytest.raises(SpecError, match="modified_lindhard.*ambiguous"):
        experiment_from_spec(spec)
    # an element keeps the single Lindhard model
    spec = _nai_spec()
    spec["target"]["formula"] = "Ge"
    assert isinstance(experiment_from_spec(spec).defaults.quenching, Lindhard)


def test_per_nucleus_quenching_rejects_single_energy_questions():
    q = PerNucleusQuenching.lindhard("CaWO4")
    assert q.elements == ("Ca", "W", "O")
    with pytest.raises(ValueError, match="depends on the recoiling nucleus"):
        q.Q(1.0)
    with pytest.raises(ValueError, match="no model for Na23"):
        q.groups(["Na23"])
    with pytest.raises(ValueError, match=r"also holds \['Na'\]"):
        _exp("NaI", 1.0, PerNucleusQuenching.lindhard("CsI"), None, [1.0, 2.0])
    with warnings.catch_warnings():  # an element, or the recoil observable: nothing to say
        warnings.simplefilter("error")
        _exp("Ge", 1.0, Lindhard(32, 72.63), None, [1.0, 2.0])
        th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(3), quenching=Lindhard(53, 126.9))
        Experiment("t", "NaI", 1.0, 1.0, DAR, Observable("E_R_keV", (1.0, 2.0)), None, th)


# ---------------------------------------------------------------------------------- reactor flux < 2 MeV
@pytest.mark.parametrize("formula,light,e_max", [("NaI", "Na23", 0.374), ("Al2O3", "O16", 0.537)])
def test_reactor_below_2MeV_warns_for_low_thresholds(formula, light, e_max):
    """Huber-Mueller fits start at 2 MeV; E_R,max(2 MeV) = 2 E^2/(M + 2E) is 0.374 keV for Na23 and
    0.537 keV for O16: a 10-20 eV bin (NUCLEUS-like) is also fed by neutrinos below 2 MeV."""
    with pytest.warns(FluxValidityWarning, match=rf"{light} recoils from 0.01 keV .* up to {e_max} keV"):
        prepare(formula, Reactor(4.25, 58.82), bin_edges_keV=[0.01, 0.02])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FluxValidityWarning)
        prepare(formula, Reactor(4.25, 58.82), bin_edges_keV=[e_max * 1.01, 2.0])  # above: silent
        prepare(formula, DAR, bin_edges_keV=[0.01, 0.02])  # the pion DAR flux starts at 0: silent


def test_reactor_warning_from_an_experiment_threshold():
    """Experiment.prepare passes the analysis threshold (not the recoil grid minimum): E_ee bins from
    0.3 keVee on Ge are E_R >~ 1.5 keV, far above E_R,max(2 MeV, Ge70) = 0.123 keV."""
    def ge(lo_keVee):
        th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(4), quenching=Lindhard(32, 72.63),
                              resolution=GaussianResolution(0.05))
        return Experiment("ge", "Ge", 1.0, 1.0, Reactor(3.9, 17.1), Observable("E_ee_keV", (lo_keVee, 1.0)),
                          RecoilGrid(0.02, 5.0, 100, 2), th)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FluxValidityWarning)
        assert ge(0.3).threshold_keV() > 1.0
        ge(0.3).prepare()
    with pytest.warns(FluxValidityWarning, match="Ge70"):
        ge(0.005).prepare()  # 5 eVee: E_R ~ 0.05 keV < 0.123 keV


def test_presets_are_silent(data_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FluxValidityWarning)
        warnings.filterwarnings("error", message=".*quenches every nucleus")
        for name in preset_names():
            load_preset(name).prepare()


def test_warning_marks_where_the_rate_is_short(data_dir):
    """The 10-20 eV NaI bin with Huber-Mueller only is 42% below the same flux with the low-energy
    tables (issue 13); above E_R,max(2 MeV, Na23) = 0.374 keV (no warning) the two agree to 1e-9."""
    hm = Reactor(4.25, 58.82)
    full = Reactor.with_low_energy_tables(data_dir, 4.25, 58.82, capture="bestiole")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FluxValidityWarning)
        a = np.asarray(binned_rate(cj.PhysicsParams(), prepare("NaI", hm, bin_edges_keV=[0.01, 0.02, 0.38, 1.0])))
    b = np.asarray(binned_rate(cj.PhysicsParams(), prepare("NaI", full, bin_edges_keV=[0.01, 0.02, 0.38, 1.0])))
    np.testing.assert_allclose(a[0] / b[0], 0.585, atol=0.01)
    np.testing.assert_allclose(a[2] / b[2], 1.0, rtol=1e-9)


# ---------------------------------------------------------------------------------- command line
def test_predict_shows_observed_counts_and_chi2(data_dir, capsys):
    import json

    from scipy.stats import chi2 as chi2_dist

    from cevnsjax.cli import main
    from cevnsjax.experiment import predict as _predict

    assert main(["predict", "dresden_ii", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    exp = load_preset("dresden_ii")
    mu = np.asarray(_predict(exp.defaults, exp.prepare()).total)
    o = exp.observed
    # independent: Gaussian chi^2 of the rates with their errors at the default prediction, 130 bins
    np.testing.assert_allclose(out["chi2"], np.sum(((o.values - mu) / o.errors) ** 2), rtol=1e-10)
    assert out["ndf"] == 130 and out["chi2_kind"] == "Gaussian chi2"
    np.testing.assert_allclose(out["p_value"], chi2_dist.sf(out["chi2"], 130), rtol=1e-12)
    np.testing.assert_allclose(out["observed"], o.values)
    assert main(["predict", "dresden_ii"]) == 0
    text = capsys.readouterr().out
    assert "observed" in text.splitlines()[2] and "Gaussian chi2 at the defaults" in text
    # Poisson counts: the deviance 2 sum[mu - n + n ln(n/mu)]
    assert main(["predict", "coherent_csi_2017", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    n, mu = np.asarray(out["observed"]).ravel(), np.asarray(out["total"]).ravel()
    use = mu > 0  # bins with nothing expected are left out (infinite deviance if they hold counts) and counted
    n, mu = n[use], mu[use]
    dev = 2 * np.sum(mu - n + np.where(n > 0, n * np.log(np.where(n > 0, n, 1) / mu), 0.0))
    np.testing.assert_allclose(out["chi2"], dev, rtol=1e-9)
    assert out["ndf"] == use.sum() and out["zero_expected_with_counts"] == np.sum(
        (np.asarray(out["total"]).ravel() <= 0) & (np.asarray(out["observed"]).ravel() > 0))
    # no data: no chi2
    assert main(["predict", "nucleus_ge", "--json"]) == 0
    assert "chi2" not in json.loads(capsys.readouterr().out)


def test_scan_profiles_fit_priors_by_default(tmp_path, capsys):
    import xarray as xr

    from cevnsjax.cli import main

    args = ["scan", "conus", "--asimov", "--param", "signal_scale=lin:0.5:1.5:3", "--prior", "bkg.flat.rate=uniform:0:30",
            "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    assert "profiled: bkg.flat.rate" in capsys.readouterr().out
    with xr.open_dataset(tmp_path / "scan.nc") as ds:
        np.testing.assert_allclose(np.asarray(ds["bkg.flat.rate"])[1], 10.0, rtol=1e-6)  # Asimov truth
    assert main(args[:-3] + ["--profile", "none", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "profiled: nothing" in capsys.readouterr().out
    # parameters of interest (signal_scale, physics) with a prior are not profiled by default
    args = ["scan", "conus", "--asimov", "--param", "sin2_theta_w=lin:0.2:0.3:3", "--prior", "signal_scale=uniform:0:5",
            "--prior", "bkg.flat.rate=uniform:0:30", "--prior", "g_zprime=uniform:0:1e-4", "--out", str(tmp_path / "c"),
            "--no-progress"]
    assert main(args) == 0
    assert "profiled: bkg.flat.rate\n" in capsys.readouterr().out


def test_scan_warns_when_chi2_per_ndf_is_large(tmp_path, capsys, data_dir):
    from cevnsjax.cli import _warn_bad_fit, main

    assert _warn_bad_fit(300.0, 130, 1) and "300 / 129" in capsys.readouterr().err
    assert not _warn_bad_fit(104.0, 130, 8) and capsys.readouterr().err == ""
    assert not _warn_bad_fit(10.0, 3, 3)  # no degrees of freedom left: nothing to say
    assert _warn_bad_fit(7988.0, 600, 1, zero_expected=7)
    assert "(7 bins hold counts where the model expects none" in capsys.readouterr().err
    # Dresden-II with its background frozen at the defaults: chi2/ndf ~ 300; profiled ([fit.priors]): ~ 0.85
    base = ["scan", "dresden_ii", "--param", "signal_scale=lin:0.5:1.5:3", "--no-progress"]
    assert main(base + ["--profile", "none", "--out", str(tmp_path / "a")]) == 0
    assert "chi2_min / ndf" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "b")]) == 0
    assert "chi2_min / ndf" not in capsys.readouterr().err


def test_per_nucleus_quenching_gradients_are_finite_and_correct():
    """d(counts)/dk of each nucleus's traced k (a pytree leaf) against a central finite difference."""
    import jax

    edges = np.linspace(1.0, 15.0, 8)

    def q(k_na, k_i):
        return PerNucleusQuenching((Lindhard(11.0, _mean_A("Na"), k=k_na), Lindhard(53.0, _mean_A("I"), k=k_i)),
                                   ("Na", "I"))

    e = _exp("NaI", 14.6, q(0.137, 0.166), GaussianResolution(0.3, 0.05), edges)
    prep = e.prepare()

    def total(k):
        return predict(e.defaults.replace(quenching=q(k[0], k[1])), prep).signal.sum()

    k0 = jnp.array([0.137, 0.166])
    g = np.asarray(jax.grad(total)(k0))
    assert np.all(np.isfinite(g)) and np.all(g != 0)
    h = 1e-5
    fd = [(float(total(k0.at[i].add(h))) - float(total(k0.at[i].add(-h)))) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-5)
