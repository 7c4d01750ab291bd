"""The global CEvNS likelihood: Dresden-II + COHERENT CsI 2017 + CsI 2021 + LAr 2020 in one JointModel.

Shared physics (flat priors, common to every data set): ``sin2_theta_w`` U(0.1, 0.4); vector NSI
``eps_u_ee``, ``eps_d_ee`` U(-0.6, 0.6); a light Z' (``g_zprime`` LogU(1e-7, 1e-3), ``m_zprime_MeV``
LogU(1, 1e4)) and scalar (``g_scalar``, ``m_scalar_MeV``, same ranges). The CsI neutron radius
``csi:delta_rn_fm`` U(-3, 4) fm is a tie (:class:`cevnsjax.JointModel` ``ties``) of the two CsI data sets'
local ``delta_rn_fm``: the Ge and Ar radii stay at their form-factor defaults. The CsI proton rms radii
are the muonic-atom values 4.804 / 4.749 fm, so R_n(CsI) = 4.83 fm (Klein-Nystrand default, mean of Cs
and I) + ``csi:delta_rn_fm``.

Every data set keeps its own nuisances, named ``<experiment>:<name>``:

* Dresden-II (:mod:`cevnsjax.analyses.dresden_ii`): modified Lindhard QF with k ~ N(0.162, 0.004)
  (CONUS+) and q ~ U(-5e-4, 3e-4), and the 7 background parameters; Gaussian chi^2 on the daily rates.
* CsI 2017 / 2021 (:mod:`cevnsjax.analyses.coherent_csi`, ``nuisance_priors(..., "rn")``): flux 10 %,
  QF or light yield, acceptance, BRN/NIN and steady-state normalisations; Poisson on PE x time.
* LAr 2020 (release LArParametersAnlA.yaml): flux_norm N(1, 0.10), prompt BRN N(1, 160/497), delayed BRN
  N(1, 33/33) truncated at 0, steady state N(1, 25/3152); Poisson on E_ee x t_trig.

The CsI 2021 full data set CONTAINS the 2017 data: combining both counts those events twice
(``datasets=("dresden_ii", "coherent_csi_2021", "coherent_lar_2020")`` avoids it).
"""

from __future__ import annotations

import dataclasses

__all__ = ["DATASETS", "CSI", "RN_SITE", "PHYSICS", "physics_priors", "lar_priors", "analysis", "global_model",
           "sampling_model", "sampling_init", "csi_default_radius", "radius_site"]

DATASETS = ("dresden_ii", "coherent_csi_2017", "coherent_csi_2021", "coherent_lar_2020")
CSI = ("coherent_csi_2017", "coherent_csi_2021")
RN_SITE = "csi:delta_rn_fm"
PHYSICS = ("sin2", "rn", "nsi", "zprime", "scalar")
Q_SITE = "dresden_ii:q"


def physics_priors(physics) -> dict:
    """Flat priors of the shared physics parameters named by ``physics`` (a subset of :data:`PHYSICS`;
    ``rn`` is the CsI radius tie, not a shared parameter)."""
    from cevnsjax.stats.infer import LogUniform, Uniform

    table = {"sin2": {"sin2_theta_w": Uniform(0.1, 0.4)},
             "rn": {},
             "nsi": {"eps_u_ee": Uniform(-0.6, 0.6), "eps_d_ee": Uniform(-0.6, 0.6)},
             "zprime": {"g_zprime": LogUniform(1e-7, 1e-3), "m_zprime_MeV": LogUniform(1.0, 1e4)},
             "scalar": {"g_scalar": LogUniform(1e-7, 1e-3), "m_scalar_MeV": LogUniform(1.0, 1e4)}}
    bad = [p for p in physics if p not in table]
    if bad:
        raise ValueError(f"physics {bad}: choose from {', '.join(PHYSICS)}")
    out = {}
    for p in physics:
        out.update(table[p])
    return out


def lar_priors() -> dict:
    """Nuisance priors of the COHERENT LAr 2020 analysis A (from the release's parameter file)."""
    from cevnsjax.stats.infer import Normal, TruncatedNormal

    return {"flux_norm": Normal(1.0, 0.10), "bkg.brn_prompt.scale": Normal(1.0, 160.0 / 497.0),
            "bkg.brn_delayed.scale": TruncatedNormal(1.0, 1.0, lo=0.0), "bkg.ss_bkg.scale": Normal(1.0, 25.0 / 3152.0)}


def analysis(name: str, rn: bool):
    """The :class:`cevnsjax.Analysis` of one data set with its nuisance priors (and a local ``delta_rn_fm``
    U(-3, 4) fm for CsI if ``rn``)."""
    import cevnsjax as cj
    from cevnsjax.stats.infer import Uniform, prior_from_spec

    if name == "dresden_ii":
        from cevnsjax.analyses import dresden_ii as DQ

        kind, a, b, _ = DQ.K_PRIORS["conus_plus"]
        pri = {"k": prior_from_spec((kind, a, b)), "q": Uniform(*DQ.Q_RANGE), **DQ.background_priors()}
        return cj.Analysis(DQ.dresden_experiment(), priors=pri)
    if name in CSI:
        from cevnsjax.analyses import coherent_csi as CC

        e, n_ac = CC.load_experiment(name)
        prep = e.prepare()
        dp = CC.proton_shift(prep)[0]
        d = e.defaults
        e = dataclasses.replace(e, defaults=d.replace(physics=dataclasses.replace(d.physics, delta_rp_fm=dp)))
        pri = CC.nuisance_priors(name, n_ac, "rn")
        if rn:
            pri["delta_rn_fm"] = Uniform(-3.0, 4.0)
        return cj.Analysis(e, priors=pri, prepared=prep)
    if name == "coherent_lar_2020":
        return cj.Analysis(cj.load_preset(name), priors=lar_priors())
    raise ValueError(f"dataset {name!r}: choose from {', '.join(DATASETS)}")


def global_model(datasets=DATASETS, physics=("sin2", "rn"), analyses=None):
    """The global :class:`cevnsjax.JointModel`: ``datasets`` (names in :data:`DATASETS`) sharing the
    ``physics`` parameters; with ``"rn"`` the CsI data sets' radii are tied into :data:`RN_SITE`."""
    import cevnsjax as cj

    datasets = tuple(datasets)
    bad = [d for d in datasets if d not in DATASETS]
    if bad or not datasets:
        raise ValueError(f"datasets {bad or list(datasets)}: choose one or more of {', '.join(DATASETS)}")
    rn = "rn" in physics
    analyses = analyses or [analysis(n, rn) for n in datasets]
    multi = len(analyses) > 1
    csi_sites = [f"{a.experiment.name}:delta_rn_fm" for a in analyses
                 if a.experiment.name in CSI and "delta_rn_fm" in a.priors] if rn and multi else []
    ties = {RN_SITE: csi_sites} if len(csi_sites) > 1 else {}
    return cj.JointModel(analyses, shared=physics_priors(physics), ties=ties)


def radius_site(model) -> str | None:
    """The name of the CsI radius shift in ``model`` (the tie, or a single CsI data set's local site)."""
    for k in (RN_SITE, *(f"{c}:delta_rn_fm" for c in CSI), "delta_rn_fm"):
        if k in model.priors:
            return k
    return None


def csi_default_radius(model) -> float:
    """R_n(CsI) in fm at ``delta_rn_fm`` = 0 (Klein-Nystrand default, mean of Cs and I)."""
    from cevnsjax.analyses import coherent_csi as CC

    a = [a for a in model.analyses if a.experiment.name in CSI][0]
    return float(CC.proton_shift(a.prepared)[2])


def sampling_model(model):
    """The NumPyro model NUTS runs: ``model`` with Dresden-II's q sampled through the complementary log-log
    link of :func:`cevnsjax.analyses.dresden_ii.q_link` (same posterior, better-behaved coordinate)."""
    from cevnsjax.analyses import dresden_ii as DQ

    return DQ.sampling_model(model, site=_q_site(model))


def sampling_init(model, values) -> dict:
    """Starting values of :func:`sampling_model`'s latent sites from physical ``values``."""
    from cevnsjax.analyses import dresden_ii as DQ

    return DQ.sampling_init(model, values, site=_q_site(model))


def _q_site(model) -> str:
    return Q_SITE if model.multi else "q"
