"""Named parameters: every name maps to the right field, unknown names list the valid ones."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cevnsjax as cj
from cevnsjax import experiment as P
from cevnsjax.detector.backgrounds import Flat
from cevnsjax.detector.quenching import ModifiedLindhard
from cevnsjax.detector.response import GeResolution
from cevnsjax.experiment import ExperimentParams

TH = ExperimentParams(physics=cj.PhysicsParams(), flux_scale=jnp.ones(3), quenching=ModifiedLindhard(32, 72.63, k=0.157, q=0.0),
                      resolution=GeResolution(), backgrounds=(Flat(1.0, name="flat"),))
COMPS = ("a", "b", "c")


def test_every_valid_name_round_trips():
    for i, name in enumerate(P.valid_names(TH, COMPS)):
        v = 0.01 * (i + 1)
        th = P.apply(TH, {name: v}, COMPS)
        got = P.get(th, name, COMPS)
        if name == "flux_norm":  # a multiplier on all components
            np.testing.assert_allclose(np.asarray(th.flux_scale), v)
        else:
            np.testing.assert_allclose(float(got), v, rtol=1e-15)


def test_off_diagonal_nsi_is_symmetric_and_aliases():
    th = P.apply(TH, {"eps_u_mue": 0.3, "k": 0.2, "q": -1e-4}, COMPS)
    m = np.asarray(th.physics.eps_u)
    assert m[1, 0] == m[0, 1] == 0.3 and m[0, 0] == 0
    assert float(th.quenching.k) == 0.2 and float(th.quenching.q) == -1e-4


def test_unknown_names_list_valid_choices():
    with pytest.raises(ValueError, match=r"unknown parameter 'sin2_thetaw'. Did you mean 'sin2_theta_w'\?.*Valid choices"):
        P.check_names(["sin2_thetaw"], TH, COMPS)
    with pytest.raises(ValueError, match=r"bkg.flat.rate"):
        P.check_names(["bkg.flat.rat"], TH, COMPS)


def test_apply_is_jittable_and_differentiable():
    f = jax.jit(lambda x: P.get(P.apply(TH, {"g_zprime": x, "bkg.flat.rate": 2 * x, "flux.b": 3 * x}, COMPS),
                               "flux.b", COMPS))
    assert float(f(1.5)) == 4.5
    assert float(jax.grad(f)(1.0)) == 3.0
