"""Experiment layer: response chain, Jacobian, gradients, no recompilation, specifications."""

import copy
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cevnsjax as cj
from cevnsjax.detector.backgrounds import Exponential, Flat, GaussianLine, Template
from cevnsjax.detector.quenching import Lindhard, ModifiedLindhard, monotonic_threshold
from cevnsjax.detector.response import GeResolution
from cevnsjax.experiment import Experiment, ExperimentParams, GaussianResolution, Observable, PoissonPE, RecoilGrid, predict
from cevnsjax.io.spec import SpecError, experiment_from_spec, load_spec

SRC = cj.Reactor.dresden_ii()


def _exp(obs, quench, resolution=None, grid=RecoilGrid(0.05, 15.0, 1500, 4), backgrounds=()):
    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(4), quenching=quench, resolution=resolution,
                          backgrounds=backgrounds)
    return Experiment("t", "Ge", 1.0, 1.0, SRC, obs, grid, th)


@pytest.mark.parametrize("quench", [Lindhard(32, 72.63, k=0.157), ModifiedLindhard(32, 72.63, k=0.153, q=-15e-5)])
def test_counts_in_keVee_bins_equal_counts_in_matching_recoil_bins(quench):
    # Without resolution, counts in E_ee bins whose edges are E_ee(E_R edges) must equal counts in the
    # E_R bins (the Jacobian check of issue 3). The E_ee path interpolates the cumulative recoil
    # spectrum (cubic Hermite on a 1500-bin grid): agreement 1e-6 relative where counts are non-zero.
    er_edges = np.geomspace(0.6, 1.8, 13)  # above the modified-Lindhard cap (Q < 1 for E_R > 0.05 keV)
    assert float(monotonic_threshold(quench, jnp.geomspace(0.05, 15, 400))) < 0.6
    ee_edges = np.asarray(quench.E_ee(jnp.asarray(er_edges)))
    e = _exp(Observable("E_ee_keV", tuple(ee_edges)), quench)
    a = predict(e.defaults, e.prepare()).signal
    e_r = _exp(Observable("E_R_keV", tuple(er_edges)), None, grid=None)
    b = predict(e_r.defaults, e_r.prepare()).signal
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_resolution_conserves_counts_and_converges_to_perfect_resolution():
    q = Lindhard(32, 72.63, k=0.157)
    wide = Observable("E_ee_keV", (-5.0, 0.3, 0.5, 50.0))
    ex = _exp(wide, q, resolution=GeResolution())
    sm = predict(ex.defaults, ex.prepare()).signal
    # total over bins spanning +-infinity in practice = all recoils on the grid (probability conservation)
    direct = _exp(Observable("E_R_keV", tuple(np.geomspace(0.05, 15.0, 1501))), None, grid=None)
    tot = float(predict(direct.defaults, direct.prepare()).signal.sum())
    np.testing.assert_allclose(float(sm.sum()), tot, rtol=1e-9)
    # a very narrow Gaussian (0.1 eV) reproduces the perfect-resolution counts in 50 eV bins to 1e-3
    # (node discreteness of the 4-node x 1500-bin grid inside 10 eV sets the residual)
    obs = Observable("E_ee_keV", tuple(np.linspace(0.1, 0.3, 5)))
    narrow = _exp(obs, q, resolution=GaussianResolution(1e-4))
    perfect = _exp(obs, q)
    np.testing.assert_allclose(np.asarray(predict(narrow.defaults, narrow.prepare()).signal),
                               np.asarray(predict(perfect.defaults, perfect.prepare()).signal), rtol=1e-3)


@pytest.fixture(scope="module")
def dii_like():
    q = ModifiedLindhard(32, 72.63, k=0.157, q=-1e-4)
    bg = (Flat(0.5, name="flat"), Exponential(20.0, 0.3, name="exp"), GaussianLine(2.0, 1.297, 0.07, name="L1"))
    ex = _exp(Observable("E_ee_keV", tuple(np.linspace(0.2, 1.5, 27))), q, GeResolution(),
              grid=RecoilGrid(0.02, 4.5, 120, 2), backgrounds=bg)
    return ex, ex.prepare()


def test_gradients_match_finite_differences(dii_like):
    ex, prep = dii_like
    th0 = ex.defaults

    def counts(k, q, sn, fano, flat, rate0, decay, amp, s2w):
        th = th0.replace(quenching=ModifiedLindhard(32, 72.63, k=k, q=q), resolution=GeResolution(sn, fano, 2.96e-3),
                         physics=th0.physics.replace(sin2_theta_w=s2w))
        th = th.replace_background("flat", rate=flat).replace_background("exp", rate0=rate0, decay=decay)
        th = th.replace_background("L1", amplitude=amp)
        return predict(th, prep).total

    args = tuple(jnp.asarray(v) for v in (0.157, -1e-4, 0.0685, 0.11, 0.5, 20.0, 0.3, 2.0, 0.2386))
    jac = jax.jacfwd(counts, argnums=tuple(range(9)))(*args)
    assert all(np.all(np.isfinite(np.asarray(j))) for j in jac)
    check_grads(counts, args, order=1, modes=["fwd", "rev"], eps=1e-6, rtol=2e-3)


def test_gradients_finite_at_q_zero_and_positive(dii_like):
    ex, prep = dii_like
    for q in (0.0, 2e-5):
        g = jax.grad(lambda k, q: predict(ex.defaults.replace(quenching=ModifiedLindhard(32, 72.63, k=k, q=q)), prep).total.sum(),
                     argnums=(0, 1))(0.157, q)
        assert np.all(np.isfinite(np.asarray(g)))


def test_no_recompilation_between_parameter_values(dii_like):
    ex, prep = dii_like
    traces = []

    @jax.jit
    def f(th, prep):
        traces.append(1)
        return predict(th, prep).total

    for k, q, a in ((0.157, 0.0, 0.5), (0.18, -1e-4, 0.7), (0.13, 5e-5, 0.1)):
        th = ex.defaults.replace(quenching=ModifiedLindhard(32, 72.63, k=jnp.asarray(k), q=jnp.asarray(q)))
        f(th.replace_background("flat", rate=jnp.asarray(a)), prep)
    assert len(traces) == 1


def test_backgrounds_integrate_exactly():
    edges = jnp.linspace(0.2, 1.5, 14)
    np.testing.assert_allclose(float(Flat(2.0).counts(edges, 10.0).sum()), 2.0 * 1.3 * 10.0, rtol=1e-13)
    e = Exponential(3.0, 0.4).counts(edges, 1.0).sum()
    np.testing.assert_allclose(float(e), 3.0 * 0.4 * (np.exp(-0.2 / 0.4) - np.exp(-1.5 / 0.4)), rtol=1e-13)
    g = GaussianLine(5.0, 0.8, 0.05).counts(edges, 2.0).sum()
    np.testing.assert_allclose(float(g), 10.0, rtol=1e-12)  # line fully inside the range
    with pytest.raises(ValueError, match="template"):
        Template(1.0, np.array([1.0, -2.0]), name="bad")


def test_pe_observable_with_poisson_smearing_conserves_counts():
    from cevnsjax.detector.quenching import ConstantQuenching

    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(3), quenching=ConstantQuenching(0.0878),
                          resolution=PoissonPE(13.348))
    ex = Experiment("csi", "CsI", 14.6, 308.1, cj.PionDAR.coherent_csi_2017(),
                    Observable("PE", tuple(np.arange(0.0, 400.0, 1.0))), RecoilGrid(0.5, 60.0, 300, 4), th)
    pe = float(predict(th, ex.prepare()).signal.sum())
    d = Experiment("csi", "CsI", 14.6, 308.1, cj.PionDAR.coherent_csi_2017(),
                   Observable("E_R_keV", tuple(np.geomspace(0.5, 60.0, 301))), None, th.replace(resolution=None))
    ref = float(predict(d.defaults, d.prepare()).signal.sum())
    # every recoil lands in some PE bin 0..399 (mean PE <= 70): Poisson probabilities sum to 1. The
    # smeared path does not split recoil bins at the prompt-line edge (the direct one does): 1e-6.
    np.testing.assert_allclose(pe, ref, rtol=1e-6)


# ------------------------------------------------------------------------------- specifications
BASE = {
    "name": "t", "target": {"formula": "Ge", "mass_kg": 1.0}, "exposure": {"live_days": 10.0},
    "source": {"type": "reactor", "preset": "conus"},
    "detector": {"observable": "E_ee_keV", "bins": {"start": 0.3, "stop": 1.0, "n": 7},
                 "recoil_grid": {"min_keV": 0.3, "max_keV": 3.0, "n_bins": 50},
                 "quenching": {"model": "lindhard"}, "resolution": {"model": "ge"}},
    "background": [{"type": "flat", "rate": 1.0}],
}


def _mut(path, value):
    s = copy.deepcopy(BASE)
    d = s
    for k in path[:-1]:
        d = d[k]
    if value is KeyError:
        del d[path[-1]]
    else:
        d[path[-1]] = value
    return s


@pytest.mark.parametrize("path,value,match", [
    (("detector", "quenchin"), {}, r"unknown key detector.quenchin \(did you mean 'quenching'\?\)"),
    (("target", "mass_kg"), -2.0, r"target.mass_kg = -2.0 must be finite and > 0"),
    (("target", "formula"), "GeX", r"target.formula.*element='X'"),
    (("source", "type"), "supernova", r"source.type = 'supernova' is not valid"),
    (("detector", "observable"), "E_nr", r"detector.observable = 'E_nr' is not valid.*E_R_keV"),
    (("detector", "bins"), {"start": 1.0, "stop": 0.5, "n": 3}, r"stop = 0.5 must exceed start = 1.0"),
    (("detector", "quenching"), {"model": "lindhard", "kk": 0.1}, r"unknown key detector.quenching.kk \(did you mean 'k'\?\)"),
    (("exposure", "live_days"), KeyError, r"missing key exposure.live_days"),
    (("source", "power_GW"), "3 GW", r"source.power_GW = '3 GW' must be a number"),
])
def test_spec_errors_name_key_value_and_fix(path, value, match):
    with pytest.raises(SpecError, match=match):
        experiment_from_spec(_mut(path, value))


def test_spec_builds_and_predicts():
    ex = experiment_from_spec(copy.deepcopy(BASE))
    p = predict(ex.defaults, ex.prepare())
    assert p.total.shape == (7,) and float(p.signal.sum()) > 0
    np.testing.assert_allclose(float(p.background.sum()), 1.0 * 0.7 * 10.0, rtol=1e-12)


def test_presets_load(data_dir):
    from cevnsjax.io.spec import load_preset, preset_names

    names = preset_names()
    for n in ("dresden_ii", "conus", "nucleus_cawo4", "nucleus_al2o3", "nucleus_ge"):
        assert n in names
    ex = load_preset("dresden_ii")
    assert ex.observed is not None and ex.observed.values.shape == (130,) and ex.observed.likelihood == "gaussian"
    p = predict(ex.defaults, ex.prepare())
    assert np.all(np.asarray(p.signal) >= 0) and float(p.signal[0]) > float(p.signal[-1])


@pytest.mark.parametrize("qf", [{"model": "lindhard", "k": 0.157}, {"model": "modified_lindhard", "k": 0.157, "q": -1e-4},
                                {"model": "tabulated", "path": "${CEVNSJAX_DATA}/dresden_ii/QF_Fef_YBe.txt", "table": "YBe"}])
def test_dresden_ii_quenching_options_switch(qf, data_dir):
    s = load_spec("dresden_ii")
    s["detector"]["quenching"] = qf
    ex = experiment_from_spec(s)
    p = predict(ex.defaults, ex.prepare())
    assert float(p.signal.sum()) > 0 and np.all(np.isfinite(np.asarray(p.total)))


def test_cli(capsys, data_dir):
    from cevnsjax.cli import main

    assert main(["experiments"]) == 0
    assert "dresden_ii" in capsys.readouterr().out
    assert main(["predict", "conus", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unit"] == "keVee" and len(out["bin_edges"]) == len(out["total"]) + 1
    np.testing.assert_allclose(sum(out["total"]), out["totals"]["total"], rtol=1e-12)
    assert main(["predict", "no_such_experiment"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0


def test_efficiency_averaged_over_subbins():
    # An efficiency that varies inside wide bins: with S sub-bins the bin counts converge to
    # int eps(E) dN/dE dE as 1/S^2 (midpoint rule): S = 64 and 128 agree to 5e-4 (measured 1.8e-4),
    # while the bin-centre value (S = 1) is off by more than 1%.
    from cevnsjax.detector.response import Coherent2021Efficiency

    q = Lindhard(32, 72.63, k=0.157)
    eff = Coherent2021Efficiency(a=1.0, b=30.0, c=0.25, d=0.0)  # steep logistic in keVee around 0.25
    res = []
    for s in (1, 64, 128):
        obs = Observable("E_ee_keV", (0.15, 0.35, 0.55), efficiency_subbins=s)
        ex = _exp(obs, q, resolution=GeResolution(), grid=RecoilGrid(0.2, 8.0, 200, 2))
        res.append(np.asarray(predict(ex.defaults.replace(efficiency=eff), ex.prepare()).signal))
    np.testing.assert_allclose(res[1], res[2], rtol=5e-4)
    assert np.max(np.abs(res[0] / res[2] - 1)) > 1e-2
