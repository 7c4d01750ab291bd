"""Fixed-grid smearing (``Observable(smearing="grid")``): the response of a fixed resolution and its
derivative are tabulated once by ``prepare()`` and every recoil node is deposited on the 2 grid points
around it (cubic Hermite: value and gradient continuous in E_obs).

Tolerances: ``prepare()`` picks the step at which the cubic interpolation of every P(bin | E_obs) is
within 1e-7 (absolute probability) of the exact Gaussian CDF difference, so the counts of a bin carry at
most ~1e-7 x (counts of all nodes that can reach it) of interpolation error. For Dresden-II that is
<= 1.0e-5 relative in every bin above 1e-3 of the largest (measured, Fef and modified Lindhard
k = 0.157, q in {-3e-4, 0, 3e-4}) and <= 1.1e-6 of the published errors: the tests allow 1e-4 and 1e-5.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import cevnsjax as cj
from cevnsjax.detector.quenching import ConstantQuenching, ModifiedLindhard
from cevnsjax.detector.response import (
    GeResolution,
    choose_smearing_grid,
    gaussian_bin_probabilities,
    grid_deposit,
    hermite_weights,
)
from cevnsjax.experiment import Experiment, ExperimentParams, GammaPE, GaussianResolution, Observable, RecoilGrid, predict
from cevnsjax.io.spec import SpecError, experiment_from_spec, load_spec

SRC = cj.Reactor.dresden_ii()
ML = lambda k, q: ModifiedLindhard(32.0, 72.63, k=k, q=q)  # noqa: E731


def _pair(resolution, edges=np.linspace(0.2, 1.5, 131), quench=ML(0.157, -1e-4), grid=RecoilGrid(0.02, 4.5, 60, 2),
          truncate=True, step=None):
    """The same detector with the exact and the grid response, prepared."""
    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(4), quenching=quench, resolution=resolution)
    out = []
    for mode in ("exact", "grid"):
        obs = Observable("E_ee_keV", tuple(edges), renormalise_positive=truncate, smearing=mode,
                         smearing_step=step if mode == "grid" else None)
        ex = Experiment("t", "Ge", 2.924, 1.0, SRC, obs, grid, th)
        out.append((ex, ex.prepare()))
    return out


@pytest.fixture(scope="module")
def dii():
    return _pair(GeResolution())


def _compare(a, b, frac=1e-3):
    a, b = np.asarray(a), np.asarray(b)
    big = a > frac * a.max()
    assert big.sum() > 10
    return np.max(np.abs(b - a)[big] / a[big])


# ------------------------------------------------------------------------------------ building blocks
def test_hermite_deposit_is_exact_for_cubics_and_continuous_with_its_derivative():
    np.testing.assert_allclose(np.asarray(hermite_weights(0.5)), [0.5, 0.5, 0.125, -0.125], atol=1e-15)
    G, h = 12, 0.3
    g = h * jnp.arange(G)
    f = lambda E: 2.0 - E + 0.5 * E**2 - 0.3 * E**3  # noqa: E731
    table = jnp.concatenate([f(g), h * jax.vmap(jax.grad(f))(g)])[:, None]
    x = jnp.linspace(0.0, G - 1.0, 97)
    interp = lambda x: (grid_deposit(jnp.eye(x.size), x, G) @ table)[:, 0]  # noqa: E731
    np.testing.assert_allclose(np.asarray(interp(x)), np.asarray(f(h * x)), rtol=0, atol=1e-12)
    # crossing a grid point: value and derivative continuous (C1)
    for side in (jnp.array([5.0 - 1e-9]), jnp.array([5.0 + 1e-9])):
        np.testing.assert_allclose(float(interp(side)[0]), float(f(h * 5.0)), atol=1e-8)
        d = jax.grad(lambda x: interp(x)[0])(side)
        np.testing.assert_allclose(float(d[0]), float(h * jax.grad(f)(h * 5.0)), rtol=1e-7)


def test_deposit_drops_values_outside_the_grid_with_finite_gradients():
    x = jnp.array([-0.5, 0.0, 3.3, 9.0, 9.5])
    d = grid_deposit(jnp.array([1.0, 2.0, 3.0, 4.0, 5.0]), x, 10)
    np.testing.assert_allclose(float(d[:10].sum()), 2.0 + 3.0 + 4.0, rtol=1e-14)  # -0.5 and 9.5 are outside 0..9
    table = jnp.concatenate([jnp.arange(10.0) ** 2, 2 * jnp.arange(10.0)])  # x^2 and its derivative
    g = jax.grad(lambda x: jnp.sum(grid_deposit(jnp.ones(5), x, 10) @ table))(x)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(np.asarray(g)[[0, 4]], 0.0)
    np.testing.assert_allclose(np.asarray(g)[2], 2 * 3.3, rtol=1e-12)  # d/dx x^2, the cubic being exact


def test_automatic_step_meets_its_tolerance_and_rejects_non_smooth_responses():
    edges = jnp.linspace(0.2, 1.5, 131)
    res = GeResolution()
    prob = lambda E: gaussian_bin_probabilities(res(E), E, edges, True)  # noqa: E731
    lo, step, T, err = choose_smearing_grid(prob, 4.5)
    assert err <= 1e-7 and 0.005 < step < 0.01 and lo == 0.0 and T.shape[1] == 130
    # an independent check at random points (not the 1/4, 1/2, 3/4 points the step was chosen at)
    n = T.shape[0] // 2
    x = np.random.default_rng(1).uniform(lo, lo + step * (n - 1), 400)
    d = grid_deposit(jnp.eye(400), jnp.asarray((x - lo) / step), n)
    np.testing.assert_allclose(np.asarray(d @ T), np.asarray(prob(jnp.asarray(x))), rtol=0, atol=1e-7)
    # sigma = sqrt(1e-6 E) keV: 1 eV at 1 keVee, -> 0 at E = 0: no uniform grid of <= 20000 points does
    with pytest.raises(ValueError, match="not smooth enough"):
        narrow = GaussianResolution(1e-9, 0.0, 1e-6)
        choose_smearing_grid(lambda E: gaussian_bin_probabilities(narrow(E), E, edges), 4.5)


# ------------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("q", [-3e-4, 0.0, 3e-4])
def test_grid_agrees_with_exact_dresden_like(dii, q):
    (ex, pe), (_, pg) = dii
    th = ex.defaults.replace(quenching=ML(0.157, q))
    a, b = predict(th, pe).signal, predict(th, pg).signal
    assert _compare(a, b) < 1e-4  # measured 4.0e-6 to 4.9e-6
    assert np.all(np.asarray(b) >= 0)  # negative cubic weights in the far tails are clipped
    np.testing.assert_allclose(float(b.sum()), float(a.sum()), rtol=1e-5)


def test_grid_agrees_with_exact_other_resolutions():
    # untruncated Gaussian with a constant + stochastic term, bins reaching below the lowest node
    (ex, pe), (_, pg) = _pair(GaussianResolution(0.05, 0.0, 2e-3), edges=np.linspace(-0.1, 1.0, 45), truncate=False)
    assert _compare(predict(ex.defaults, pe).signal, predict(ex.defaults, pg).signal) < 1e-4  # measured 5.5e-7
    # a given step (15 eV instead of the automatic 7.6 eV): 1e-3 (measured 6.0e-5)
    (ex, pe), (_, pg) = _pair(GeResolution(), step=0.015)
    assert pg.smear_step == 0.015
    assert _compare(predict(ex.defaults, pe).signal, predict(ex.defaults, pg).signal) < 1e-3


def test_nodes_beyond_the_table_are_dropped_as_the_exact_path_would():
    # bins end at 0.5 keVee, the table at 1.07 keVee (P < 1e-15 beyond); k = 0.3 puts nodes up to ~1.5 keVee
    # (measured 6.6e-7)
    (ex, pe), (_, pg) = _pair(GeResolution(), edges=np.linspace(0.2, 0.5, 31), quench=ML(0.3, 0.0))
    top = pg.smear_lo + pg.smear_step * (pg.smear.shape[0] // 2 - 1)
    E_ee = ML(0.3, 0.0).E_ee(pe.kernels.E_R_MeV[0] * 1e3)
    assert top < 1.5 and float(E_ee.max()) > top + 0.2
    assert _compare(predict(ex.defaults, pe).signal, predict(ex.defaults, pg).signal) < 1e-4


def test_pe_observable_with_gamma_smearing():
    # CsI 2021-like Gamma PE statistics (E_ee -> PE): the table works in E_ee, edges in PE
    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(3), quenching=ConstantQuenching(0.0878),
                          resolution=GammaPE())
    out = []
    for mode in ("exact", "grid"):
        ex = Experiment("csi", "CsI", 14.6, 308.1, cj.PionDAR.coherent_csi_2017(),
                        Observable("PE", tuple(np.arange(0.0, 61.0, 4.0)), smearing=mode), RecoilGrid(0.5, 60.0, 60, 2), th)
        out.append(np.asarray(predict(th, ex.prepare()).signal))
    assert _compare(out[0], out[1]) < 1e-4  # measured 5.6e-9


@pytest.mark.parametrize("qf", ["Fef", "modified_lindhard"])
def test_dresden_ii_preset_uses_the_grid_and_agrees_with_exact(qf, data_dir):
    s = load_spec("dresden_ii")
    assert s["detector"]["smearing"] == "grid"
    if qf != "Fef":
        s["detector"]["quenching"] = {"model": "modified_lindhard", "k": 0.157, "q": -1e-4}
    grid = experiment_from_spec(s)
    s["detector"]["smearing"] = "exact"
    exact = experiment_from_spec(s)
    pg, pe = grid.prepare(), exact.prepare()
    err = grid.observed.errors
    for th in (grid.defaults, grid.defaults.replace(quenching=ML(0.157, 3e-4))):
        a, b = np.asarray(predict(th, pe).total), np.asarray(predict(th, pg).total)
        assert np.max(np.abs(a - b) / err) < 1e-5  # measured <= 1.1e-6 of the published errors
        assert _compare(predict(th, pe).signal, predict(th, pg).signal) < 1e-4


# ------------------------------------------------------------------------------------ gradients
def test_gradients_match_finite_differences_and_the_exact_path(dii):
    (ex, pe), (_, pg) = dii
    th0 = ex.defaults

    def counts(prep):
        return lambda k, q, s2w: predict(th0.replace(quenching=ML(k, q), physics=th0.physics.replace(sin2_theta_w=s2w)),
                                         prep).signal

    for q in (-1e-4, 0.0, 2e-5):
        check_grads(counts(pg), (0.157, q, 0.2386), order=1, modes=("fwd", "rev"), eps=1e-6, atol=1e-4, rtol=1e-4)
        ja = jax.jacfwd(counts(pe), argnums=(0, 1))(0.157, q, 0.2386)
        jb = jax.jacrev(counts(pg), argnums=(0, 1))(0.157, q, 0.2386)
        for a, b in zip(ja, jb):
            a, b = np.asarray(a), np.asarray(b)
            # derivatives of the interpolant: one order less accurate than the values (measured 3.7e-6)
            assert np.max(np.abs(b - a)) < 1e-4 * np.max(np.abs(a))


def test_gradients_finite_below_threshold_and_at_the_table_ends(dii):
    (ex, _), (_, pg) = dii
    # q > 0: nodes below the modified-Lindhard threshold sit at E_ee = 0, the first table point
    for k, q in ((0.157, 0.0), (0.157, 3e-4), (0.05, 6e-4), (0.9, 0.0)):
        g = jax.grad(lambda k, q: predict(ex.defaults.replace(quenching=ML(k, q)), pg).total.sum(), argnums=(0, 1))(k, q)
        assert np.all(np.isfinite(np.asarray(g)))
    h = jax.hessian(lambda kq: predict(ex.defaults.replace(quenching=ML(kq[0], kq[1])), pg).total.sum())(jnp.array([0.157, 1e-4]))
    assert np.all(np.isfinite(np.asarray(h)))


# ------------------------------------------------------------------------------------ once, frozen
def test_prepare_tabulates_once_and_predict_does_not_recompile(dii):
    (ex, _), (_, pg) = dii
    assert pg.smear.ndim == 2 and pg.smear.shape[1] == 130 and pg.smear.shape[0] % 2 == 0 and pg.smear_step > 0
    traces = []

    @jax.jit
    def f(th, prep):
        traces.append(1)
        return predict(th, prep).total

    for k, q in ((0.157, 0.0), (0.18, -1e-4), (0.13, 5e-5)):
        f(ex.defaults.replace(quenching=ML(jnp.asarray(k), jnp.asarray(q))), pg)
    assert len(traces) == 1


def test_resolution_is_frozen_loudly(dii):
    (ex, pe), (_, pg) = dii
    th = ex.defaults
    # another resolution value: NaN counts (the table cannot follow it), never silently the old table
    assert np.all(np.isnan(np.asarray(predict(th.replace(resolution=GeResolution(0.07)), pg).total)))
    # derivatives along a resolution parameter: NaN; all others finite
    g = jax.grad(lambda th: predict(th, pg).total.sum())(th)
    assert all(np.isnan(float(v)) for v in jax.tree.leaves(g.resolution))
    assert np.isfinite(float(g.quenching.k)) and np.isfinite(float(g.signal_scale))
    # a different model type or none: an error at trace time naming the fix
    with pytest.raises(ValueError, match="smearing='exact'"):
        predict(th.replace(resolution=GaussianResolution(0.07)), pg)
    with pytest.raises(ValueError, match="smearing='exact'"):
        predict(th.replace(resolution=None), pg)
    # the exact path still follows the resolution
    assert np.all(np.isfinite(np.asarray(predict(th.replace(resolution=GeResolution(0.07)), pe).total)))


def test_model_refuses_resolution_parameters_of_a_grid_experiment(dii):
    # the NaN above never reaches a fit: the model builder names the parameter and the fix up front
    from cevnsjax.experiment import valid_names
    from cevnsjax.stats.model import Analysis, JointModel

    (exact, pe), (ex, pg) = dii
    field = next(n for n in valid_names(ex.defaults) if n.startswith("resolution."))
    assert field not in valid_names(ex.defaults, experiment=ex)
    assert field in valid_names(exact.defaults, experiment=exact)
    with pytest.raises(ValueError, match=rf"{field!r} cannot vary: .*smearing='exact'"):
        JointModel([Analysis(ex, {field: ("uniform", 0.01, 0.2)}, prepared=pg)])
    JointModel([Analysis(exact, {field: ("uniform", 0.01, 0.2)}, prepared=pe)])  # the exact path may vary it


# ------------------------------------------------------------------------------------ specification
BASE = {"name": "t", "target": {"formula": "Ge", "mass_kg": 1.0}, "exposure": {"live_days": 10.0},
        "source": {"type": "reactor", "power_GW": 3.0, "distance_m": 20.0},
        "detector": {"observable": "E_ee_keV", "bins": {"start": 0.2, "stop": 0.9, "n": 7},
                     "recoil_grid": {"min_keV": 0.1, "max_keV": 8.0, "n_bins": 60, "nodes_per_bin": 2},
                     "quenching": {"model": "lindhard"}, "resolution": {"model": "ge"}, "smearing": "grid"}}


@pytest.mark.parametrize("change,match", [
    ({"smearing": "gird"}, r"detector.smearing = 'gird' is not valid \(did you mean 'grid'\?\); use one of exact, grid"),
    ({"smearing_step": -0.01}, r"detector.smearing_step = -0.01 must be finite and > 0"),
    ({"smearing": "exact", "smearing_step": 0.005}, r"smearing_step = 0.005 needs detector.smearing = \"grid\""),
    ({"resolution": None}, r"smearing = \"grid\" needs a \[detector.resolution\] table"),
])
def test_spec_errors(change, match):
    s = copy.deepcopy(BASE)
    for k, v in change.items():
        if v is None:
            del s["detector"][k]
        else:
            s["detector"][k] = v
    with pytest.raises(SpecError, match=match):
        experiment_from_spec(s)


def test_spec_builds_grid_and_observable_validates():
    s = copy.deepcopy(BASE)
    s["detector"]["smearing_step"] = 0.004
    ex = experiment_from_spec(s)
    assert ex.observable.smearing == "grid" and ex.observable.smearing_step == 0.004
    assert ex.prepare().smear_step == 0.004
    with pytest.raises(ValueError, match="smearing='fast' is not valid"):
        Observable("E_ee_keV", (0.2, 0.3), smearing="fast")
    with pytest.raises(ValueError, match="smearing_step=0.01 is only used with smearing='grid'"):
        Observable("E_ee_keV", (0.2, 0.3), smearing_step=0.01)
    th = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(4), quenching=ML(0.157, 0.0))
    with pytest.raises(ValueError, match="smearing='grid' needs a resolution model"):
        Experiment("t", "Ge", 1.0, 1.0, SRC, Observable("E_ee_keV", (0.2, 0.3), smearing="grid"), RecoilGrid(0.1, 4.0), th)
