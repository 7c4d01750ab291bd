"""COHERENT CsI 2017 / 2021 analysis pieces: the presets on a fast recoil grid with the released data, the
nuisance priors of each release and the JointModel of one question (signal strength, sin^2 theta_W, NSI, R_n).

Used by ``models/coherent_csi.py``, notebook 06 and the results table::

    e, n_ac = load_experiment("coherent_csi_2017")
    jm = build(("coherent_csi_2017",), "signal", {"coherent_csi_2017": (e, n_ac, e.prepare())})
    best = jm.fit()
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["R_P_FM", "FAST_RECOIL_GRID", "smooth_template", "load_experiment", "proton_shift", "nuisance_priors",
           "poi_priors", "build"]


#: point-proton rms radii from muonic atoms (REFERENCE.md §2, as used by Cadeddu et al.)
R_P_FM = {"Cs": 4.804, "I": 4.749}


#: coarser recoil grid than the presets' (0.5-60 keV, 150 x 4 nodes): 1-50 keVnr, 40 bins x 2 nodes.
#: Signal totals change by < 0.03 %, any bin by < 0.08 % of the largest; predict is ~7x faster
#: (the PE response dominates). E_R,max = 47 keVnr; 1 keVnr is 1.2 PE (acceptance 0 below 5 PE).
FAST_RECOIL_GRID = (1.0, 50.0, 40, 2)


# --------------------------------------------------------------------------------------- experiments
def smooth_template(grid):
    """Product of the PE and time marginals of a (PE, t) count grid, same total: a separable,
    nearly noise-free estimate of a steady-state background."""
    g = np.asarray(grid, float)
    tot = g.sum()
    return np.outer(g.sum(1), g.sum(0)) / max(tot, 1e-300)


def load_experiment(name, radius_variant=False):
    """The preset with the data attached, its steady-state template smoothed; for the neutron-radius
    fit the proton rms radii are moved to the muonic-atom values (delta_rp_fm)."""
    import cevnsjax as cj
    from cevnsjax.detector.backgrounds import Template
    from cevnsjax.experiment import RecoilGrid

    e = cj.load_preset(name)
    e = dataclasses.replace(e, recoil_grid=RecoilGrid(*FAST_RECOIL_GRID))
    d = e.defaults
    ss = d.background("steady_state")
    n_ac = float(np.sum(ss.template))
    bgs = tuple(Template(b.scale, smooth_template(b.template), name=b.name) if b.name == "steady_state" else b
                for b in d.backgrounds)
    d = d.replace(backgrounds=bgs)
    e = dataclasses.replace(e, defaults=d)
    return e, n_ac


def proton_shift(prep):
    """delta_rp_fm that moves the form factor's default proton rms radii to R_P_FM (mean over Cs, I)."""
    rp0 = np.ravel(np.asarray(prep.kernels.rp0_fm))
    target = np.array([R_P_FM["Cs"], R_P_FM["I"]])
    return float(np.mean(target - rp0)), float(np.mean(rp0)), float(np.mean(np.ravel(np.asarray(prep.kernels.rn0_fm))))


def nuisance_priors(name, n_ac, fit, variant="full"):
    """Nuisance priors of one data set (see the module docstring for their sources)."""
    from cevnsjax import Normal, TruncatedNormal

    norm = 0.112 if fit in ("sin2", "nsi") else 0.10
    if name == "coherent_csi_2017":
        if variant == "cadeddu_like":
            return {"flux_norm": Normal(1.0, 0.112), "bkg.prompt_neutrons.scale": Normal(1.0, 0.25),
                    "bkg.steady_state.scale": Normal(1.0, 1.0 / np.sqrt(n_ac))}
        return {"flux_norm": Normal(1.0, norm),
                "quenching.value": TruncatedNormal(0.0878, 0.0166, lo=0.03),
                "efficiency.a": Normal(0.6655, 0.030), "efficiency.x0": Normal(10.8507, 0.29),
                "bkg.prompt_neutrons.scale": Normal(1.0, 0.25),
                "bkg.steady_state.scale": Normal(1.0, 1.0 / np.sqrt(n_ac))}
    if variant == "cadeddu_like":
        return {"flux_norm": Normal(1.0, 0.112), "bkg.brn.scale": Normal(1.0, 0.25),
                "bkg.nin.scale": TruncatedNormal(1.0, 0.70, lo=0.0),
                "bkg.steady_state.scale": Normal(1.0, 1.0 / np.sqrt(n_ac))}
    return {"flux_norm": Normal(1.0, norm), "resolution.a": Normal(0.0749, 0.0019),
            "efficiency.c": Normal(10.8646, 1.02), "bkg.brn.scale": Normal(1.0, 0.25),
            "bkg.nin.scale": TruncatedNormal(1.0, 0.70, lo=0.0),
            "bkg.steady_state.scale": Normal(1.0, 1.0 / np.sqrt(n_ac))}


def poi_priors(fit):
    """Parameters of interest and their (flat) priors."""
    from cevnsjax import Uniform

    return {"signal": {"signal_scale": Uniform(0.0, 3.0)},
            "sin2": {"sin2_theta_w": Uniform(0.0, 0.5)},
            "nsi": {"eps_u_ee": Uniform(-1.0, 1.0), "eps_d_ee": Uniform(-1.0, 1.0)},
            "rn": {"delta_rn_fm": Uniform(-3.0, 4.0)}}[fit]


def build(names, fit, experiments, variant="full"):
    """JointModel of the data sets ``names`` for one question; physics parameters shared."""
    from cevnsjax import Analysis, JointModel

    analyses = []
    for n in names:
        e, n_ac, prep = experiments[n]
        if fit == "rn":
            dp, _, _ = proton_shift(prep)
            d = e.defaults
            e = dataclasses.replace(e, defaults=d.replace(physics=dataclasses.replace(d.physics, delta_rp_fm=dp)))
        analyses.append(Analysis(e, priors=nuisance_priors(n, n_ac, fit, variant), prepared=prep))
    return JointModel(analyses, shared=poi_priors(fit))

