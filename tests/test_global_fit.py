"""The global CEvNS model (cevnsjax.analyses.global_fit, used by models/global_fit.py): Dresden-II + CsI 2017 +
CsI 2021 + LAr in one JointModel.

* Its -2 ln L equals the sum of the four single-experiment -2 ln L at random points (shared physics
  and every experiment's nuisances drawn inside their priors), to 1e-10 relative: the same terms
  summed in another order, so only rounding differs.
* The tied CsI neutron radius moves both CsI terms and neither the Ge nor the Ar one.
* The gradient is finite everywhere tested.
"""

from __future__ import annotations

import numpy as np
import pytest

from cevnsjax.analyses import global_fit as G


@pytest.fixture(scope="module")
def gm(data_dir):
    return G.global_model(G.DATASETS, G.PHYSICS)


def _draw(gm, rng):
    from cevnsjax.stats.infer import LogUniform, Normal, TruncatedNormal, Uniform

    out = {}
    for k, p in gm.priors.items():
        if isinstance(p, Uniform):
            out[k] = rng.uniform(p.lo, p.hi)
        elif isinstance(p, LogUniform):
            out[k] = float(np.exp(rng.uniform(np.log(p.lo), np.log(p.hi))))
        elif isinstance(p, TruncatedNormal):
            out[k] = max(p.mu + p.sigma * rng.uniform(-1, 1), (p.lo or -np.inf) + 1e-3)
        elif isinstance(p, Normal):
            out[k] = p.mu + p.sigma * rng.uniform(-1, 1)
        else:
            raise AssertionError(f"prior of {k}: {p}")
    # keep the Dresden-II background near its data (far away it is a huge chi^2 that hides the rest)
    for k, v in {"A": 20.0, "B": 150.0, "C": 4.0, "h_L1": 100.0, "c_L1": 1.297, "w_L1": 0.1}.items():
        out[f"dresden_ii:bkg.dresden_ii.{k}"] = v * rng.uniform(0.9, 1.1)
    out["g_zprime"] = out["g_scalar"] = 10 ** rng.uniform(-6, -4.5)
    return out


def _singles(gm):
    import cevnsjax as cj

    return {a.experiment.name: cj.JointModel([a], shared=G.physics_priors(G.PHYSICS)) for a in gm.analyses}


def _local(values, name):
    out = {}
    for k, v in values.items():
        if k == G.RN_SITE:
            if name in G.CSI:
                out["delta_rn_fm"] = v
        elif ":" in k:
            e, n = k.split(":", 1)
            if e == name:
                out[n] = v
        else:
            out[k] = v
    return out


def test_global_likelihood_is_the_sum_of_the_single_experiment_ones(gm):
    singles = _singles(gm)
    assert set(singles) == set(G.DATASETS) and len(gm.names) >= 15
    obs = gm.observed()
    rng = np.random.default_rng(7)
    for _ in range(4):
        v = _draw(gm, rng)
        total = float(gm.minus2lnL(v, obs))
        parts = {n: float(m.minus2lnL(_local(v, n), {n: obs[n]})) for n, m in singles.items()}
        assert all(np.isfinite(p) and p > 0 for p in parts.values()), parts
        assert total == pytest.approx(sum(parts.values()), rel=1e-10, abs=1e-8), (total, parts)


def test_tied_radius_moves_only_csi(gm):
    singles = _singles(gm)
    obs = gm.observed()
    v = _draw(gm, np.random.default_rng(3))
    v[G.RN_SITE] = 0.0
    w = dict(v, **{G.RN_SITE: 1.5})
    for n, m in singles.items():
        a, b = (float(m.minus2lnL(_local(x, n), {n: obs[n]})) for x in (v, w))
        if n in G.CSI:
            assert abs(a - b) > 1e-3, n  # a 1.5 fm larger radius suppresses the CsI rate visibly
        else:
            assert a == b, n
    assert float(gm.minus2lnL(w, obs)) != float(gm.minus2lnL(v, obs))


def test_global_gradient_finite(gm):
    import jax
    import jax.numpy as jnp

    obs = gm.observed()
    v = _draw(gm, np.random.default_rng(11))
    names = gm.names
    g = jax.grad(lambda x: gm.minus2lnL(dict(zip(names, x)), obs))(jnp.asarray([v[n] for n in names]))
    assert np.all(np.isfinite(np.asarray(g)))


def test_ties_are_checked(data_dir):
    import dataclasses

    import cevnsjax as cj

    gm_small = G.global_model(("coherent_lar_2020",), ("sin2",))
    a = gm_small.analyses[0]
    b = cj.Analysis(dataclasses.replace(a.experiment, name="lar_copy"), priors=a.priors, prepared=a.prepared)
    with pytest.raises(ValueError, match="not a local free parameter"):
        cj.JointModel([a, b], ties={"t": ["coherent_lar_2020:flux_norm", "lar_copy:nope"]})
    with pytest.raises(ValueError, match="at least two"):
        cj.JointModel([a, b], ties={"t": ["coherent_lar_2020:flux_norm"]})
    m = cj.JointModel([a, b], ties={"flux": ["coherent_lar_2020:flux_norm", "lar_copy:flux_norm"]})
    assert "flux" in m.names and "lar_copy:flux_norm" not in m.names
    obs = m.asimov()
    v = m.init_values()
    # the tie moves both experiments: the untied model with both sites set, less one of the two constraint
    # terms (a tie has ONE prior, the first site's: flux_norm ~ N(1, 0.1) at 1.1 gives (0.1 / 0.1)^2 = 1)
    u = cj.JointModel([a, b])
    w = {**{k: x for k, x in v.items() if k != "flux"}, "coherent_lar_2020:flux_norm": 1.1, "lar_copy:flux_norm": 1.1}
    tied = float(m.minus2lnL({**v, "flux": 1.1}, obs))
    assert tied == pytest.approx(float(u.minus2lnL(w, obs)) - 1.0, rel=1e-12)
    assert tied > 1.0  # the data term moved too (Asimov data at flux_norm = 1)
