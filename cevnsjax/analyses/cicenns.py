"""CICENNS sensitivity pieces (300 kg CsI at 10.5 m from the CSNS): the preset with assumed steady-state and
beam-neutron backgrounds scaled from COHERENT CsI 2017, nuisance priors, and Fisher matrices on Asimov data.

Used by ``models/cicenns_sensitivity.py`` and the results table::

    e, prep, info = build_experiment()
    jm = build(e, prep, {"signal_scale": cj.Uniform(0.0, 2.0)}, nuisance_priors(info))
    fisher(jm).errors["signal_scale"]          # relative cross-section precision
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["FAST_RECOIL_GRID", "SS_SCALE", "build_experiment", "nuisance_priors", "build", "constraint", "fisher",
           "fisher_at"]


FAST_RECOIL_GRID = (1.0, 50.0, 40, 2)


#: COHERENT 2017 -> CICENNS steady-state scaling: mass x beam windows (rate x live time) x window length
SS_SCALE = (300.0 / 14.6) * (25.0 / 60.0) * (365.0 / 308.1) * (6.0 / 12.0)


# --------------------------------------------------------------------------------------- experiment
def build_experiment(brn_unc=0.25):
    """The cicenns preset with the assumed steady-state and beam-neutron templates attached."""
    import cevnsjax as cj
    from cevnsjax.detector.backgrounds import Template
    from cevnsjax.experiment import RecoilGrid
    from cevnsjax.io.location import data_dir
    from cevnsjax.io.presets.coherent_csi import prompt_neutron_grid_2017
    from cevnsjax.io.releases.coherent_csi_2017 import load_coherent_csi_2017

    e = cj.load_preset("cicenns", with_data=False)
    e = dataclasses.replace(e, recoil_grid=RecoilGrid(*FAST_RECOIL_GRID))
    dd = data_dir()
    if dd is None:
        raise FileNotFoundError("the published-data folder was not found: set $CEVNSJAX_DATA (default ../shared/data)")
    d17 = load_coherent_csi_2017(dd / "coherent_csi_2017")
    edges = np.asarray(e.observable.edges)
    if not (np.allclose(edges[:26], d17.pe_edges) and np.allclose(np.diff(edges), 2.0)):
        raise ValueError("cicenns PE bins must be the 2017 release's 2-PE bins extended above 50 PE")
    nb = edges.size - 1

    def extend(spec):  # 25 bins (0-50 PE) -> nb bins, flat continuation from the mean of 40-50 PE
        out = np.full(nb, np.mean(spec[-5:]))
        out[:spec.size] = spec
        return out

    ss = extend(d17.anticoincidence_on.sum(1)) * SS_SCALE
    t6 = d17.t_edges_us[1:] <= 6.0 + 1e-9
    brn17 = prompt_neutron_grid_2017(d17)[:, t6].sum(1)
    e17 = cj.load_preset("coherent_csi_2017")
    e17 = dataclasses.replace(e17, recoil_grid=RecoilGrid(*FAST_RECOIL_GRID))
    s17 = float(np.asarray(cj.predict(e17.defaults, e17.prepare()).signal)[:, t6].sum())
    prep = e.prepare()
    s_cic = float(np.sum(cj.predict(e.defaults, prep).signal))
    brn = extend(brn17) * (s_cic / s17)
    templates = (Template(1.0, ss[:, None], name="steady_state"), Template(1.0, brn[:, None], name="brn"))
    e = dataclasses.replace(e, defaults=e.defaults.replace(backgrounds=templates))
    info = {"signal_sm": s_cic, "steady_state": float(ss.sum()), "brn": float(brn.sum()), "ss_scale_vs_2017": SS_SCALE,
            "brn_over_signal_2017_t6us": float(brn17.sum() / s17)}
    return e, e.prepare(), info


def nuisance_priors(info, flux_unc=0.05, qf_unc=0.038, acc_unc=0.03, brn_unc=0.25,
                    which=("flux", "qf", "acc", "ss", "brn")):
    """Assumed systematics (relative 1-sigma): flux, quenching factor, acceptance, beam neutrons; the
    steady-state background's Poisson error from its size (``info`` of :func:`build_experiment`)."""
    from cevnsjax import Normal, TruncatedNormal

    all_ = {"flux": ("flux_norm", Normal(1.0, flux_unc)),
            "qf": ("quenching.value", TruncatedNormal(0.0878, 0.0878 * qf_unc, lo=0.03)),
            "acc": ("efficiency.a", Normal(0.6655, 0.6655 * acc_unc)),
            "ss": ("bkg.steady_state.scale", Normal(1.0, 1.0 / np.sqrt(info["steady_state"]))),
            "brn": ("bkg.brn.scale", Normal(1.0, brn_unc))}
    return dict(all_[w] for w in which)


def build(e, prep, pois, nuis):
    """JointModel of the CICENNS experiment: parameters of interest ``pois`` shared, nuisances ``nuis``."""
    from cevnsjax import Analysis, JointModel

    return JointModel([Analysis(e, priors=nuis, prepared=prep)], shared=pois)


# ------------------------------------------------------------------------------------------ Fisher
def constraint(jm):
    """Gaussian constraint terms (-ln prior) of the Normal / TruncatedNormal priors."""
    from cevnsjax.stats.infer import Normal, TruncatedNormal

    terms = {k: (p.mu, p.sigma) for k, p in jm.priors.items() if isinstance(p, (Normal, TruncatedNormal))}
    return lambda v: sum((0.5 * ((v[k] - mu) / s) ** 2 for k, (mu, s) in terms.items() if k in v), 0.0 * v[next(iter(v))])


def fisher(jm, at=None, transform=None):
    """Fisher matrix of the Poisson Asimov likelihood + constraints at the init values (or ``at``).
    ``transform`` maps the Fisher parameters to model values (e.g. g^2 -> g)."""
    params = dict(jm.init_values())
    params.update(at or {})
    return fisher_at(jm, params, transform or (lambda v: v))


def fisher_at(jm, at, tf):
    """Fisher matrix at the model values ``at`` with ``tf`` mapping the Fisher parameters to model values."""
    from cevnsjax.stats.fit import fisher_matrix

    name = jm.analyses[0].experiment.name
    cons = constraint(jm)
    # bins with no expected counts carry no information; fisher_matrix would give 0 * inf = NaN there
    mask = np.asarray(jm.expected(tf(dict(at)))[name]).ravel() > 0
    return fisher_matrix(lambda v: jm.expected(tf(v))[name].ravel()[mask], at, constraint_nll=lambda v: cons(tf(v)))

