"""Preset ``coherent_lar_2020``: COHERENT CENNS-10 LAr Analysis A against its data release.

Reference numbers are the release's files (PROVENANCE §3; all 21 files match the Zenodo MD5s):
CEvNS template total 128.0 (= yaml cevnsPredictionNormalization 128 +- 17), 3752 events in the data.
Our prediction uses the release's inputs (13.8e22 POT, r = 0.09, 27.5 m, 24.4 kg, QF = 0.246 +
0.00078 T, sigma = 0.58 sqrt(E), the efficiency table, POT trace 440/150 ns) with the Helm form factor.
"""

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cevnsjax.detector.response import time_bin_fractions
from cevnsjax.experiment import Observable, predict
from cevnsjax.io.detector_tables import load_efficiency_table
from cevnsjax.io.presets.coherent_lar import BinEfficiency, sns_arrival_time_cdf, sns_arrival_time_pdf
from cevnsjax.io.spec import SpecError, experiment_from_spec, load_spec

NAME = "coherent_lar_2020"


@pytest.fixture(scope="module")
def release(data_dir):
    from cevnsjax.io.releases.coherent_lar_2020 import load_coherent_lar_2020

    return load_coherent_lar_2020(data_dir)


@pytest.fixture(scope="module")
def spec(data_dir):
    return load_spec(NAME)


@pytest.fixture(scope="module")
def lar(spec):
    """(experiment, prepared, nominal prediction) for the preset, E_ee x t_trig."""
    exp = experiment_from_spec(spec)
    prep = exp.prepare()
    return exp, prep, predict(exp.defaults, prep)


@pytest.fixture(scope="module")
def lar_energy_only(spec):
    s = copy.deepcopy(spec)
    del s["detector"]["time_edges_us"]
    exp = experiment_from_spec(s)
    return exp, predict(exp.defaults, exp.prepare())


# ------------------------------------------------------------------------------------------ inputs
def test_preset_inputs_match_release(lar, release):
    exp, _, _ = lar
    src = exp.source
    # POT, distance, r, mass: the release's yaml values, exactly as written in the TOML (float rounding only)
    assert src.protons_per_second * exp.live_days * 86400.0 == pytest.approx(release.pot, rel=1e-12)
    assert src.distance_m == release.distance_m == 27.5
    assert src.nu_per_flavour_per_proton == release.nu_per_proton_per_flavour == 0.09
    assert exp.mass_kg == release.fiducial_mass_kg == 24.4
    # QF = 0.246 + 0.00078 T[keVnr] (the TOML writes b per MeVnr: 0.78); same polynomial, rounding only
    T = np.array([1.0, 10.0, 50.0, 125.0])
    np.testing.assert_allclose(np.asarray(exp.defaults.quenching.Q(T)), release.qf_a + release.qf_b_per_kevnr * T,
                               rtol=1e-12)
    # sigma = 0.58 sqrt(E): the spec's sigma0 = 1e-3 keVee adds < 2e-6 relative at E >= 1 keVee
    E = np.array([1.0, 5.0, 40.0])
    np.testing.assert_allclose(np.asarray(exp.defaults.resolution(E)), release.resolution_a_sqrt_kevee * np.sqrt(E),
                               rtol=2e-6)
    assert exp.observable.shape == (12, 10)
    assert sorted(dict(exp.observable.time_pdfs)) == sorted(src.component_names)
    assert [b.name for b in exp.defaults.backgrounds] == ["brn_prompt", "brn_delayed", "ss_bkg"]


def test_arrival_time_pdfs():
    te = np.linspace(-0.1, 4.9, 11)
    for delayed, window in ((False, 0.99991), (True, 0.86679)):
        pdf = sns_arrival_time_pdf(delayed)
        f = np.asarray(time_bin_fractions(pdf, te))
        # binned PDF (10 ns bins, window edges on the grid) = analytic CDF differences; 1e-9 covers the
        # renormalisation of the < 1e-11 mass outside [-3, 60] us and the edge rounding
        np.testing.assert_allclose(f, np.diff(sns_arrival_time_cdf(te, delayed)), atol=1e-9)
        # in-window fractions quoted in COHERENT.md §3 (delayed 0.868, prompt ~1) to their 5 digits here
        assert f.sum() == pytest.approx(window, abs=1e-5)
    # the delayed CDF is a proper CDF: 0 far before, 1 far after (tau_mu = 2.197 us: e^-27 left at 60 us)
    c = sns_arrival_time_cdf(np.array([-3.0, 60.0]), True)
    assert c[0] == pytest.approx(0.0, abs=1e-12) and c[1] == pytest.approx(1.0, abs=1e-11)


# ------------------------------------------------------------------------------------------ data, backgrounds
def test_observed_is_the_release_data(lar, lar_energy_only, release):
    exp, _, _ = lar
    # integer counts: the sum over F90 (and time) must keep every one of the release's 3752 events exactly
    assert exp.observed.values.sum() == 3752
    assert lar_energy_only[0].observed.values.sum() == 3752
    np.testing.assert_array_equal(exp.observed.values, release.data_counts.sum(axis=1))
    np.testing.assert_array_equal(lar_energy_only[0].observed.values, release.data_counts.sum(axis=(1, 2)))
    assert exp.observed.likelihood == "poisson"


def test_background_templates(lar, lar_energy_only):
    _, _, pred = lar
    exp = lar[0]
    # template totals = the release's files (prompt 497, delayed 33, SS 3152), which hold them to ~1e-5
    want = {"brn_prompt": 497.0, "brn_delayed": 33.0, "ss_bkg": 3152.0}
    for b in exp.defaults.backgrounds:
        assert b.template.shape == (12, 10)
        assert b.template.sum() == pytest.approx(want[b.name], rel=1e-5)
    assert float(pred.background.sum()) == pytest.approx(sum(want.values()), rel=1e-5)
    assert float(lar_energy_only[1].background.sum()) == pytest.approx(sum(want.values()), rel=1e-5)
    # the delayed BRN sits in the 1.4-1.9 us bin only (release), and stays there after the F90 sum
    d = exp.defaults.background("brn_delayed").template
    assert d[:, 3].sum() == pytest.approx(d.sum(), rel=1e-12)


# ------------------------------------------------------------------------------------------ CEvNS vs template
def test_cevns_total_vs_collaboration(lar, release):
    _, _, pred = lar
    ours, theirs = float(pred.signal.sum()), float(release.cevns.sum())
    print(f"\nCEvNS in 0-120 keVee, -0.1-4.9 us: ours {ours:.3f}, release template {theirs:.3f}, "
          f"ratio {ours / theirs:.4f}; by flavour (nu_e, nu_mu, anti-nu_mu) "
          f"{np.asarray(pred.signal_by_flavour.sum(axis=(1, 2)))[[0, 1, 4]]}")
    assert theirs == pytest.approx(128.0, rel=1e-6)  # the file holds 128.0000053
    # Ours is 121.9 (-4.8%). The brief's 5% bound; the yaml's own uncertainty on 128 is 17 (13%),
    # and our known modelling differences are larger than the margin: Helm -> Klein-Nystrand -3.2%,
    # QF a +- 1 sigma +-1.2%, timing mean +- 200 ns moves the delayed window fraction (0.868) by ~1.5%.
    assert ours / theirs == pytest.approx(1.0, abs=0.05)
    # numerically converged: the recoil grid (200 bins x 2 nodes) against 400 x 4 moved it by 3e-5;
    # this pins our own number so that a change in the chain is noticed (0.1%)
    assert ours == pytest.approx(121.91, rel=1e-3)


def test_cevns_energy_shape_vs_template(lar, release):
    _, _, pred = lar
    ours = np.asarray(pred.signal.sum(axis=1))
    theirs = release.cevns.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ours / theirs
        shape = (ours / ours.sum()) / (theirs / theirs.sum())
    print("\nE_ee bin [keVee]  ours      template  ratio   shape-ratio")
    for i, lo in enumerate(release.e_edges_kevee[:-1]):
        r = f"{ratio[i]:6.3f}  {shape[i]:6.3f}" if theirs[i] > 1e-3 else "     -       -"
        print(f"{lo:5.0f}-{lo + 10:<5.0f}    {ours[i]:8.4f}  {theirs[i]:8.4f}  {r}")
    main = theirs > 2.0  # 0-40 keVee: 99.94% of the template
    assert main.sum() == 4
    # Measured ratios 0.979, 0.911, 0.876, 0.922. Absolute per bin within 15%: the 4.8% total offset
    # plus the shape terms below.
    np.testing.assert_allclose(ratio[main], 1.0, atol=0.15)
    # Shape (each normalised to its total) within 10%: measured 1.028, 0.956, 0.920, 0.968. The 20-30 and
    # 30-40 keVee bins move by 4.4% / 7.8% with the QF a +- 1 sigma, 3.2% / 9.9% with b +- 1 sigma and
    # -7% / -9% for Helm -> Klein-Nystrand, so 10% is about one quadrature-summed QF+form-factor sigma.
    np.testing.assert_allclose(shape[main], 1.0, atol=0.10)
    # 40-50 keVee: template 0.078, ours 0.37 (our recoil spectrum reaches E_ee(149.5 keVnr) = 54 keVee;
    # the template's tail is cut harder). Bound the difference by 0.5 events; the data error there is +-16.
    assert abs(ours[4] - theirs[4]) < 0.5
    # above 50 keVee the template holds 3e-5 events; ours is the resolution tail of the endpoint, 0.024
    assert theirs[5:].sum() < 1e-4 and ours[5:].sum() < 0.05


def test_cevns_time_shape_vs_template(lar, release):
    _, _, pred = lar
    ours = np.asarray(pred.signal.sum(axis=0))
    theirs = release.cevns.sum(axis=(0, 1))
    shape = (ours / ours.sum()) / (theirs / theirs.sum())
    print("\nt_trig bin [us]  ours     template  ratio   shape-ratio")
    for i, lo in enumerate(release.t_edges_us[:-1]):
        print(f"{lo:5.1f}-{lo + 0.5:<5.1f}     {ours[i]:7.4f}  {theirs[i]:7.4f}  {ours[i] / theirs[i]:6.3f}  {shape[i]:6.3f}")
    # first bin (-0.1-0.4 us, the rising edge of the prompt peak): measured shape ratio 1.095. The POT
    # trace mean 440 +- 200 ns moves the prompt fraction in this bin from 0.33 to 0.80 / 0.04, so 15%
    # is a small part of the timing systematic.
    assert shape[0] == pytest.approx(1.0, abs=0.15)
    # later bins (prompt peak and the mu-decay tail, tau_mu fixed): measured 0.983-1.0; 5%
    np.testing.assert_allclose(shape[1:], 1.0, atol=0.05)


def test_bin_efficiency_is_exact_at_nominal(lar_energy_only, lar, data_dir):
    """The per-component bin-averaged efficiency reproduces efficiency x spectrum on a fine binning, and
    predict applies it per flux component (needed for the time bins)."""
    exp, pred = lar_energy_only
    eff = exp.defaults.efficiency
    assert isinstance(eff, BinEfficiency) and eff.values.shape == (3, 12)
    table = lar[0].defaults.efficiency
    assert isinstance(table, BinEfficiency)
    tab = load_efficiency_table(data_dir / NAME / "CENNS10AnlAEfficiency.txt")
    sub = np.linspace(0.0, 120.0, 12 * 80 + 1)  # 0.125 keVee: a different sub-binning from the loader's 0.25
    fine = dataclasses.replace(exp, observable=Observable("E_ee_keV", tuple(sub)),
                               defaults=exp.defaults.replace(efficiency=None, backgrounds=()), observed=None)
    s = np.asarray(predict(fine.defaults, fine.prepare()).signal) * np.asarray(tab(0.5 * (sub[1:] + sub[:-1])))
    direct = s.reshape(12, -1).sum(axis=1)
    # same integrand, two sub-binnings of a piecewise-linear efficiency: agree to 0.2% in 0-10 keVee where
    # the efficiency rises steeply, 1e-4 elsewhere (bins with > 1e-3 events)
    np.testing.assert_allclose(np.asarray(pred.signal)[:1], direct[:1], rtol=2e-3)
    big = direct > 1e-3
    np.testing.assert_allclose(np.asarray(pred.signal)[1:][big[1:]], direct[1:][big[1:]], rtol=1e-4)
    # without the per-bin average (efficiency at the 10-keVee bin centres) the total would be 174, not 136
    assert float(pred.signal.sum()) == pytest.approx(136.0, abs=0.5)
    # differentiable in the efficiency values: d(total)/d(scale of all values) = total
    prep = exp.prepare()
    g = jax.grad(lambda k: predict(exp.defaults.replace(efficiency=BinEfficiency(k * eff.values, eff.edges)),
                                   prep).signal.sum())(1.0)
    assert float(g) == pytest.approx(float(pred.signal.sum()), rel=1e-9)


# ------------------------------------------------------------------------------------------ bad input
def _modified(spec, fn):
    s = copy.deepcopy(spec)
    fn(s)
    return s


def _set(path, value):
    def fn(s):
        d = s
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return fn


@pytest.mark.parametrize("change, match", [
    (_set(("detector", "bins"), {"start": 0.0, "stop": 120.0, "n": 24}), "release's 12 bins"),
    (_set(("detector", "time_edges_us"), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), "time_edges_us must be the release's 10 bins"),
    (_set(("target", "formula"), "Xe"), "argon"),
    (_set(("source", "protons_per_second"), 3.0e18), "POT"),
    (_set(("source", "distance_m"), 19.3), "distance_m"),
    (_set(("target", "mass_kg"), 14.6), "mass_kg"),
    (lambda s: s["background"].append({"type": "template", "name": "brn"}), "not in the release"),
    (lambda s: s["background"].append({"type": "template", "name": "ss_bkg"}), "given twice"),
])
def test_bad_spec_raises(spec, change, match):
    with pytest.raises(SpecError, match=match):
        experiment_from_spec(_modified(spec, change))


def test_bad_observable_and_source(spec):
    s = _modified(spec, _set(("detector", "observable"), "PE"))
    s["detector"]["resolution"] = {"model": "poisson_pe", "light_yield": 10.0}
    with pytest.raises(SpecError, match="E_ee_keV"):
        experiment_from_spec(s)
    s = _modified(spec, _set(("source",), {"type": "pion_dar", "preset": "coherent_csi_2017"}))
    with pytest.raises(SpecError, match="POT"):
        experiment_from_spec(s)
    s = _modified(spec, _set(("data", "path"), "/nonexistent/coherent_lar_2020"))
    with pytest.raises(FileNotFoundError):
        experiment_from_spec(s)


def test_bin_efficiency_rejects_other_points():
    eff = BinEfficiency(jnp.ones((3, 12)), tuple(np.linspace(0, 120, 13)))
    with pytest.raises(ValueError, match="one value per observable bin"):
        eff(jnp.linspace(0, 1, 5))
