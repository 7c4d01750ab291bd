"""A modified quenching factor mimics light new physics (Liao, Liu, Marfatia, arXiv:2104.01811): the Ge reactor
experiment (3.9 GW at 20 m, 7 kg yr, 0.2-1.5 keVee), its Asimov data with the modified Lindhard QF, and the fits of
SM + light Z' / scalar with the standard Lindhard QF. Used by ``models/qf_mimics_new_physics.py`` and the results
table. ``args`` below: any object with ``k_std``, ``bkg``, ``threshold`` (and optionally ``low_energy``), e.g. the
script's command line or ``types.SimpleNamespace(k_std=0.157, bkg=0.0, threshold=0.2, low_energy=True)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["K_TRUE", "Q_TRUE", "MODELS", "G_RANGE", "M_RANGE", "spec", "build", "truth_counts", "fit_mediator",
           "expected"]


#: truth of the Asimov data: modified Lindhard k, q
K_TRUE, Q_TRUE = 0.153, -15e-5


MODELS = {"zprime": ("g_zprime", "m_zprime_MeV"), "scalar": ("g_scalar", "m_scalar_MeV")}


G_RANGE = (1e-7, 1e-2)


M_RANGE = (0.1, 1000.0)


def spec(quenching: dict, bkg: float = 0.0, exposure_kg_yr: float = 7.0, threshold: float = 0.2,
         low_energy: bool = False) -> dict:
    """The experiment as a cevnsjax spec dict. ``low_energy``: the reactor flux below 2 MeV too (Kopeikin tables
    + 238U(n,gamma) capture branch from the data folder; their recoils reach the bins through the resolution)."""
    s = {"name": "ge_reactor_3p9GW_20m", "description": "Ge, 3.9 GW at 20 m, 7 kg yr (talk scenario)",
         "target": {"formula": "Ge", "mass_kg": 1.0}, "exposure": {"live_days": exposure_kg_yr * 365.25},
         "source": {"type": "reactor", "power_GW": 3.9, "distance_m": 20.0,
                    **({"low_energy_tables": True} if low_energy else {})},
         "cross_section": {"form_factor": "helm"},
         "detector": {"observable": "E_ee_keV", "bins": {"start": threshold, "stop": 1.5,
                                                                   "n": int(round((1.5 - threshold) / 0.05))},
                      # floor 1e-5 keVnr: converged to < 1e-4 (tests/test_grid_convergence.py)
                      "recoil_grid": {"min_keV": 1e-5, "max_keV": 4.0, "n_bins": 120, "nodes_per_bin": 2},
                      "truncate_at_zero": True, "quenching": dict(quenching),
                      "resolution": {"model": "ge", "sigma_noise_keV": 0.0685, "fano": 0.11, "eps_pair_keV": 0.00296}}}
    if bkg > 0:
        s["background"] = [{"type": "flat", "rate": float(bkg), "name": "flat"}]
    return s


def build(which: str | None, args):
    """JointModel (std Lindhard, k = args.k_std) with the mediator ``which`` free (None: SM, no free parameters
    except the background rate if any)."""
    import cevnsjax as cj
    from cevnsjax.io.spec import experiment_from_spec

    exp = experiment_from_spec(spec({"model": "lindhard", "k": args.k_std}, args.bkg, threshold=args.threshold,
                                    low_energy=getattr(args, "low_energy", False)))
    pri = {}
    if which is not None:
        g, m = MODELS[which]
        pri = {g: cj.LogUniform(*G_RANGE), m: cj.LogUniform(*M_RANGE)}
    if args.bkg > 0:
        pri["bkg.flat.rate"] = cj.Uniform(0.0, 10.0 * args.bkg)
    return cj.JointModel([cj.Analysis(exp, priors=pri)])


def truth_counts(args):
    """(experiment, Asimov counts) with the true modified Lindhard QF (K_TRUE, Q_TRUE)."""
    from cevnsjax.experiment import predict
    from cevnsjax.io.spec import experiment_from_spec

    exp = experiment_from_spec(spec({"model": "modified_lindhard", "k": K_TRUE, "q": Q_TRUE}, args.bkg,
                                   threshold=args.threshold, low_energy=getattr(args, "low_energy", False)))
    return exp, np.asarray(predict(exp.defaults, exp.prepare()).total)


def fit_mediator(which, args, obs, masses, timings):
    """Best fit of SM + mediator ``which`` with the standard Lindhard QF to the counts ``obs``: g fitted at each
    mass of ``masses`` from the best point of a coarse g scan, then (g, m) both free from the best mass.
    Returns (model, best FitResult, chi^2 per mass); the time goes to ``timings["fit_<which>_s"]``."""
    import jax

    from cevnsjax.reporting import Timer

    model = build(which, args)
    g, m = MODELS[which]

    o = {model.analyses[0].experiment.name: obs}
    with Timer() as t:
        start = dict(model.init_values())
        # -2 ln L on a (g, m) grid at the start values of the rest: one jitted, vmapped evaluation
        m2 = jax.jit(jax.vmap(jax.vmap(lambda gv, mv: model.minus2lnL({**start, g: gv, m: mv}, o), (0, None)),
                              (None, 0)))
        g_grid = np.geomspace(*G_RANGE, 5 * 24 + 1)
        coarse = np.asarray(m2(g_grid, np.asarray(masses, float)))
        chi2 = np.empty(len(masses))
        fits = []
        for i, mass in enumerate(masses):
            # start from the coarse minimum in g (the Z' chi^2 has several minima: below and beyond the sign flip)
            g0 = float(g_grid[int(np.nanargmin(coarse[i]))])
            best = model.fit(init={g: g0, m: float(mass)}, fixed={m: float(mass)}, obs=o)
            chi2[i] = best.minus2lnL
            fits.append(best)
        i = int(np.argmin(chi2))
        free = model.fit(init=fits[i].best_fit, obs=o)
        best = free if free.minus2lnL <= chi2[i] else fits[i]
    timings[f"fit_{which}_s"] = round(t.s, 2)
    return model, best, chi2


def expected(model, values):
    """Expected counts per bin of the single experiment of ``model`` at ``values``."""
    return np.asarray(next(iter(model.expected(values).values())))

