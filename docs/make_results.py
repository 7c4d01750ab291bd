"""Compute the headline numbers of cevnsjax against the published values and write the results table.

    python docs/make_results.py                 # writes docs/results.md, docs/results.json and two PNGs
    python docs/make_results.py --no-plots      # the numbers only
    python docs/make_results.py --out /tmp/res  # somewhere else

Every number is computed here with the library (presets in ``cevnsjax/experiments``, the published data
from ``$CEVNSJAX_DATA``, default ``../shared/data``, the analysis likelihoods in ``cevnsjax.analyses``), at small,
fast settings with fixed seeds: ~1.5-3 minutes on 2 CPU cores. ``tests/test_results_table.py`` calls
:func:`compute` and fails when a number drifts from ``docs/results.json`` beyond the row's stated
relative tolerance.

Rows (``ROW_IDS``): COHERENT CsI 2017 (SM prediction, fitted signal strength, significance), CsI 2021 (SM
prediction, fitted signal), LAr 2020 (CEvNS vs the collaboration's template, fitted events), Dresden-II (reactor
flux, the q < 0 preference at fixed k and with k and q both fitted), the 2104.01811 QF-mimics-new-physics
scenario, CICENNS vs COHERENT (events per year, cross-section precision by Fisher with its breakdown), the
TEXONO yield table (a consistency check) and the reactor-flux unfolding (scenarios 1-3 of the talk, the beta
scale). One coupling convention (``COUPLINGS``, tree level) in every preset; the SM rows also show PDG
radiative couplings.

Figures (unless ``--no-plots``): ``dresden_ii_kq.png`` (profile Delta chi^2 in the (k, q) plane of the
modified Lindhard QF, backgrounds profiled) and ``unfolding.png`` (unfolded flux bands, scenarios 1-3).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: relative tolerances used by tests/test_results_table.py, with the reason
RTOL_DETERMINISTIC = 1e-6  # quadrature / linear algebra / AD: reproducible to rounding
RTOL_FIT = 1e-4            # L-BFGS-B minimum (gtol 1e-7 on scaled parameters) and finite-difference Hessian errors
RTOL_TOYS = 0.05           # seeded toys: exact on one platform; another XLA reduction order can move one toy's
#                            physical-beta choice by a grid step (x1.2) and a percentile of 200 toys by a few %
REASONS = {
    RTOL_DETERMINISTIC: "deterministic (quadrature, linear algebra, autodiff)",
    RTOL_FIT: "maximum-likelihood fit: optimiser convergence (L-BFGS-B, gtol 1e-7) and finite-difference Hessian",
    RTOL_TOYS: "Monte Carlo (seeded Poisson toys): a different XLA reduction order can move a per-toy "
               "physical-beta choice by one grid step",
}

UNFOLD_TOYS = 200
UNFOLD_BETAS = np.geomspace(1e-8, 1e4, 100)  # the grid of cevnsjax.stats.unfold.run_unfolding (DEFAULT_BETA_RANGE, n_betas=100)

ROW_IDS = ("csi2017_sm", "csi2017_fit", "csi2021_sm", "csi2021_fit", "lar2020_sm", "lar2020_fit", "dresden_flux",
           "dresden_q", "dresden_kq", "mimic_2104", "cicenns_events", "cicenns_precision", "texono_yields",
           "unfold_s1", "unfold_s2", "unfold_s3", "unfold_beta", "global_sin2", "global_rn_csi")

#: the one coupling convention of the COHERENT / CICENNS / Dresden-II presets (README "Conventions"): tree level,
#: sin^2 theta_W = 0.23857; the SM rows also show PDG radiative couplings (COHERENT's own code), +5-7 %
COUPLINGS = "tree"
#: SNS beam-years in COHERENT CsI 2021's 3.198e23 POT: 1.4 MW of 1 GeV protons for 365.25 days = 2.758e23 POT
SNS_POT_PER_YEAR = 1.4e6 / 1.602176634e-10 * 365.25 * 86400
CSI2021_BEAM_YEARS = 3.198e23 / SNS_POT_PER_YEAR


def pdg_signal(exp):
    """SM signal per bin of ``exp`` with PDG radiative couplings in place of the preset's (the other convention)."""
    import cevnsjax as cj

    e = dataclasses.replace(exp, model=dataclasses.replace(exp.model, couplings="pdg"))
    return np.asarray(cj.predict(e.defaults, e.prepare()).signal)


def _row(id, quantity, published, source, value, ours, command, difference, rtol, unit="", extra=None):
    return {"id": id, "quantity": quantity, "published": published, "source": source, "value": float(value),
            "unit": unit, "extra": {k: float(v) for k, v in (extra or {}).items()}, "ours": ours,
            "command": command, "difference": difference, "rtol": rtol, "rtol_reason": REASONS[rtol]}


# ----------------------------------------------------------------------------------------- COHERENT
def coherent_rows(dd, timings):
    import cevnsjax as cj
    from cevnsjax.analyses import coherent_csi as CC
    from cevnsjax.io.releases.coherent_csi_2017 import load_coherent_csi_2017
    from cevnsjax.io.releases.coherent_lar_2020 import load_coherent_lar_2020
    from cevnsjax.stats.fit import significance

    rows = []
    t = time.perf_counter()
    e17 = cj.load_preset("coherent_csi_2017")
    s17 = np.asarray(cj.predict(e17.defaults, e17.prepare()).signal)
    roi = load_coherent_csi_2017(dd).roi_mask()
    n_roi, n_all = float(s17[roi].sum()), float(s17.sum())
    p17 = float(pdg_signal(e17)[roi].sum())
    rows.append(_row(
        "csi2017_sm", "COHERENT CsI 2017: SM CEvNS prediction in the ROI (6-30 PE, t <= 6 us)",
        "173 +- 48", "COHERENT, Science 357, 1123 (2017) [1708.01294]; the talk", n_roi,
        f"{n_roi:.1f} tree-level couplings (PDG radiative: {p17:.1f}); whole released grid 0-50 PE x 0-12 us: "
        f"{n_all:.1f}",
        "`cj.predict(load_preset('coherent_csi_2017'))`, summed over `roi_mask()`",
        f"{100 * (n_roi / 173 - 1):+.1f} %, well inside the +-28 % band. Preset choices: Klein-Nystrand form factor, "
        "Poisson PE smearing, acceptance at 2-PE bin centres (Helm would give +6 %, no PE smearing -8 %).",
        RTOL_DETERMINISTIC, "events", {"whole_grid": n_all, "pdg_couplings": p17}))
    timings["csi2017_sm"] = time.perf_counter() - t

    # fitted signal: models/coherent_csi.py likelihood (binned Poisson on PE x t, nuisances of the release)
    t = time.perf_counter()
    out = {}
    for name in ("coherent_csi_2017", "coherent_csi_2021"):
        e, n_ac = CC.load_experiment(name)
        prep = e.prepare()
        jm = CC.build((name,), "signal", {name: (e, n_ac, prep)})
        best = jm.fit(seed=0)
        null = jm.fit(init=best.best_fit, fixed={"signal_scale": 0.0})
        sm = float(np.sum(cj.predict(e.defaults.replace(backgrounds=()), prep).signal))  # this (fast) grid
        d2 = max(null.minus2lnL - best.minus2lnL, 0.0)
        out[name] = (best.best_fit["signal_scale"], best.errors["signal_scale"], sm, d2, significance(d2, 1),
                     best.converged)
    mu, err, sm, d2, z, ok = out["coherent_csi_2017"]
    mu_pub = 134 / 173
    rows.append(_row(
        "csi2017_fit", "COHERENT CsI 2017: fitted CEvNS signal strength (observed / SM prediction)",
        f"134 +- 22 observed / 173 predicted = {mu_pub:.3f} +- {22 / 173:.3f}; 6.7 sigma",
        "COHERENT, Science 357, 1123 (2017); the talk", mu,
        f"{mu:.3f} +- {err:.3f}; in the ROI (6-30 PE, t <= 6 us): {mu * n_roi:.1f} +- {err * n_roi:.1f} events "
        f"(published 134 +- 22); no-CEvNS Delta chi^2 = {d2:.1f} ({z:.1f} sigma)",
        "`models/coherent_csi.py` likelihood: "
        "`cevnsjax.analyses.coherent_csi.build(('coherent_csi_2017',), 'signal', ...).fit()`",
        f"signal strength {100 * (mu / mu_pub - 1):+.0f} % (ratio to ratio: independent of the SM normalisation), "
        f"ROI events {100 * (mu * n_roi / 134 - 1):+.0f} %, both within 1 sigma. Our error includes the release's "
        "systematics as nuisances (flux 10 %, QF 19 %, acceptance, backgrounds); the published +-22 and the "
        "likelihood (2-D PDFs with their own background model) differ. Significance from Wilks' theorem.",
        RTOL_FIT, "",
        {"events": mu * sm, "signal_strength_err": err, "events_err": err * sm, "sm_fast_grid": sm,
         "roi_fitted": mu * n_roi, "delta_chi2_no_cevns": d2, "significance_sigma": z}))
    mu21, err21, sm21f, d221, z21, _ = out["coherent_csi_2021"]
    timings["csi_fits"] = time.perf_counter() - t

    t = time.perf_counter()
    e21 = cj.load_preset("coherent_csi_2021")
    n21 = float(np.sum(cj.predict(e21.defaults, e21.prepare()).signal))
    p21 = float(pdg_signal(e21).sum())
    rows.append(_row(
        "csi2021_sm", "COHERENT CsI 2021: SM CEvNS prediction in the ROI (0-60 PE, 0-6 us)",
        "341 +- 11 (th) +- 42 (exp)", "COHERENT, PRL 129, 081801 (2022) [2110.07730] (recalled: physics/COHERENT.md "
        "found it in no primary text here)",
        n21, f"{n21:.1f} tree-level couplings (PDG radiative, COHERENT's convention: {p21:.1f})",
        "`cj.predict(load_preset('coherent_csi_2021'))`, total",
        f"{100 * (n21 / 341 - 1):+.1f} % (PDG couplings: {100 * (p21 / 341 - 1):+.1f} %), inside the +-13 % "
        "experimental error. Preset: Klein-Nystrand, the paper's PE bins, the 2017 time PDFs in place "
        "of snsFlux2D.root; COHERENT's own conventions (Helm r_n = 5.10 fm, radiative couplings) give 332. "
        "(A '333' quoted elsewhere has no source we could find and is no longer compared with.)",
        RTOL_DETERMINISTIC, "events", {"pdg_couplings": p21}))
    rows.append(_row(
        "csi2021_fit", "COHERENT CsI 2021: fitted CEvNS events", "306 +- 20 observed; 11.6 sigma",
        "COHERENT, PRL 129, 081801 (2022)", mu21 * n21,
        f"{mu21 * n21:.1f} +- {err21 * n21:.1f} (signal strength {mu21:.3f} +- {err21:.3f}); "
        f"no-CEvNS Delta chi^2 = {d221:.0f} ({z21:.1f} sigma)",
        "`models/coherent_csi.py` likelihood: "
        "`cevnsjax.analyses.coherent_csi.build(('coherent_csi_2021',), 'signal', ...).fit()`",
        f"{100 * (mu21 * n21 / 306 - 1):+.0f} %. Only the released ROI counts (9 PE x 5 t bins) and the "
        "smoothed anti-coincidence background are fitted, with BRN/NIN templates normalised to the fit code's "
        "18.4 and 5.6 events; the paper fits 3-D PDFs (PE, t, F90-like cuts) with more information.",
        RTOL_FIT, "events", {"signal_strength": mu21, "signal_strength_err": err21,
                             "delta_chi2_no_cevns": d221, "significance_sigma": z21}))

    elar = cj.load_preset("coherent_lar_2020")
    nlar = float(np.sum(cj.predict(elar.defaults, elar.prepare()).signal))
    tmpl = float(np.sum(load_coherent_lar_2020(dd).cevns))
    plar = float(pdg_signal(elar).sum())
    rows.append(_row(
        "lar2020_sm", "COHERENT LAr 2020 (Analysis A): SM CEvNS prediction, 0-120 keVee, -0.1-4.9 us",
        "128 +- 17 (the release's CEvNS template total)", "COHERENT, PRL 126, 012002 (2021); data release "
        "2006.12659", nlar, f"{nlar:.1f} tree-level couplings (PDG radiative: {plar:.1f}); release template {tmpl:.1f}",
        "`cj.predict(load_preset('coherent_lar_2020'))`, total",
        f"{100 * (nlar / tmpl - 1):+.1f} %, inside the +-13 % uncertainty. Known differences: form factor "
        "(Klein-Nystrand would move it -3 %), QF +-1 sigma (+-1.2 %), the arrival-time model (~1.5 %).",
        RTOL_DETERMINISTIC, "events", {"template_total": tmpl, "pdg_couplings": plar}))
    timings["csi2021_lar"] = time.perf_counter() - t
    t = time.perf_counter()
    rows.append(lar_fit_row(elar, nlar))
    timings["lar_fit"] = time.perf_counter() - t
    return rows


def lar_fit_priors():
    """COHERENT LAr 2020 fit: CEvNS free; backgrounds constrained by the release's predictions (COHERENT.md §3.4):
    prompt BRN 497 +- 160, delayed BRN 33 +- 33, steady state 3152 +- 25 (scales of the templates)."""
    import cevnsjax as cj

    return {"signal_scale": cj.Uniform(0.0, 5.0), "bkg.brn_prompt.scale": cj.Normal(1.0, 160 / 497),
            "bkg.brn_delayed.scale": cj.Normal(1.0, 33 / 33), "bkg.ss_bkg.scale": cj.Normal(1.0, 25 / 3152)}


def lar_fit_row(elar, nlar):
    import cevnsjax as cj
    from cevnsjax.stats.fit import significance

    m = cj.JointModel([cj.Analysis(elar, priors=lar_fit_priors())])
    best = m.fit()
    null = m.fit(fixed={"signal_scale": 0.0}, init=best.best_fit)
    mu, err = best.best_fit["signal_scale"], best.errors["signal_scale"]
    d2 = max(null.minus2lnL - best.minus2lnL, 0.0)
    return _row(
        "lar2020_fit", "COHERENT LAr 2020 (Analysis A): fitted CEvNS events (signal strength x SM prediction)",
        "159 +- 43", "COHERENT, PRL 126, 012002 (2021); data release 2006.12659 (companion Table 2)", mu * nlar,
        f"{mu * nlar:.1f} +- {err * nlar:.1f} (signal strength {mu:.3f} +- {err:.3f} of {nlar:.1f}); no-CEvNS "
        f"Delta chi^2 = {d2:.1f} ({significance(d2, 1):.1f} sigma)",
        "`JointModel([Analysis(load_preset('coherent_lar_2020'), priors=lar_fit_priors())]).fit()`",
        f"{100 * (mu * nlar / 159 - 1):+.0f} %, well within 1 sigma. Binned Poisson on the released energy x time "
        "counts (12 x 10; COHERENT also bins F90, 3-D), backgrounds as Gaussian-constrained template scales "
        "(prompt BRN 497 +- 160, delayed BRN 33 +- 33, steady state 3152 +- 25), no shape systematics.",
        RTOL_FIT, "events", {"signal_strength": mu, "signal_strength_err": err, "delta_chi2_no_cevns": d2})


# ----------------------------------------------------------------------------------------- Dresden-II
def dresden_rows(dd, timings, plots_dir=None):
    import cevnsjax as cj
    from cevnsjax.analyses import dresden_ii as DQ
    from cevnsjax.stats.fit import compare

    rows = []
    t = time.perf_counter()
    r = cj.Reactor.dresden_ii()
    full = cj.Reactor.with_low_energy_tables(dd, 2.96, 10.39, normalize_to_yield=True)
    phi, phi0, phis = r.total_flux(), r.total_flux(include_capture=False), full.spectral_flux()
    rows.append(_row(
        "dresden_flux", "Dresden-II reactor antineutrino flux at the detector (2.96 GW, 10.39 m)",
        "4.8e13 /cm^2/s", "Colaresi et al., PRL 129, 211802 (2022); used in the published fits", phi,
        f"{phi:.4g} /cm^2/s with the 238U(n,gamma) branch (7.26 nu/fission); {phi0:.4g} without (6.06 nu/fission); "
        f"spectral integral of Kopeikin tables + Huber-Mueller + 239U/239Np: {phis:.4g}",
        "`Reactor.dresden_ii().total_flux()`",
        f"{100 * (phi / 4.8e13 - 1):+.2f} %: the 4.8e13 is reproduced only with the capture branch (Daya Bay "
        "fractions, Ma-2013 energies per fission, TEXONO yields). Convention of the published fits and of the "
        "preset: the whole 4.8e13 is assigned to the four fission spectra (each normalised to unit area, no "
        "capture branch), i.e. 20 % more fission neutrinos than 2.96 GW makes; the capture branch's own "
        "neutrinos (< 1.3 MeV) are left out.",
        RTOL_DETERMINISTIC, "cm^-2 s^-1", {"no_capture": phi0, "spectral_with_tables": phis}))

    m = DQ.build_model(None)
    best = m.fit(seed=0)
    null = m.fit(init=best.best_fit, fixed={"q": 0.0})
    test = compare(null, best)
    mk = DQ.build_model("conus_plus")
    bk = mk.fit(init=best.best_fit, seed=0)
    nk = mk.fit(init=bk.best_fit, fixed={"q": 0.0})
    tk = compare(nk, bk)
    q, dq = best.best_fit["q"], best.errors["q"]
    rows.append(_row(
        "dresden_q", "Dresden-II: preference for q < 0 of the modified Lindhard QF (SM CEvNS) at fixed k = 0.157, "
        "Delta chi^2(q = 0)", "'2 sigma improvement' with a negative q (abstract); the talk says 2.5 sigma",
        "Liao, Liu, Marfatia, PRD 106, L031702 (2022) [2202.10622] (journal reference recalled; only the "
        "abstract was available here)",
        test.delta_chi2,
        f"Delta chi^2 = {test.delta_chi2:.2f} ({test.significance:.2f} sigma) at k = 0.157, best q = "
        f"({q * 1e4:.2f} +- {dq * 1e4:.2f}) x 1e-4; with k ~ N(0.162, 0.004): Delta chi^2 = {tk.delta_chi2:.2f} "
        f"({tk.significance:.2f} sigma), k = {bk.best_fit['k']:.4f}",
        "`models/dresden_ii_quenching.py` likelihood: `build_model(None).fit()` vs `.fit(fixed={'q': 0})` "
        "(`cevnsjax.analyses.dresden_ii`)",
        "A fixed-k test (1 dof), not the paper's: see the next row for k and q both fitted. Our likelihood: "
        "Gaussian chi^2 on the released Rx-ON rates, 7 background nuisances (A + B exp(-CE) + L1/L2/M lines), "
        "flux 4.8e13 without capture, k fixed or CONUS+ prior. Re-derived with the converged recoil grid (floor "
        "1e-5 keVnr; the former 0.02 keVnr floor lost 2.25 counts/day at low E_ee): Delta chi^2 3.48 -> 3.21.",
        RTOL_FIT, "", {"significance_sigma": test.significance, "q_best": q, "q_err": dq,
                       "chi2_best": best.minus2lnL, "kprior_delta_chi2": tk.delta_chi2,
                       "kprior_k": bk.best_fit["k"], "kprior_q": bk.best_fit["q"]}))
    rows.append(dresden_kq_row(best, nk=null))
    timings["dresden"] = time.perf_counter() - t
    t = time.perf_counter()
    rows.append(mimic_row())
    timings["mimic_2104"] = time.perf_counter() - t
    if plots_dir is not None:
        t = time.perf_counter()
        plot_dresden_kq(Path(plots_dir) / "dresden_ii_kq.png", best)
        timings["dresden_kq_plot"] = time.perf_counter() - t
    return rows


def dresden_kq_row(best, nk):
    """Modified Lindhard with k and q both fitted (k flat in [0.10, 0.30]) against standard Lindhard: at
    k = 0.157 (2 dof, the 2202.10622 comparison as we read its abstract) and with k free too (1 dof)."""
    import cevnsjax as cj
    from cevnsjax.analyses.dresden_ii import build_model
    from cevnsjax.stats.fit import significance

    m = build_model(None, extra_priors={"k": cj.Uniform(0.10, 0.30)})
    kq = m.fit(init=best.best_fit, seed=0)
    lind = m.fit(init=kq.best_fit, fixed={"q": 0.0})
    d2, d1 = nk.minus2lnL - kq.minus2lnL, lind.minus2lnL - kq.minus2lnL
    z2, z1 = significance(d2, 2), significance(d1, 1)
    k, q = kq.best_fit["k"], kq.best_fit["q"]
    return _row(
        "dresden_kq", "Dresden-II: modified Lindhard with k and q both fitted vs standard Lindhard (k = 0.157), "
        "Delta chi^2 (2 dof)", "'2 sigma improvement' with a negative q (abstract)",
        "Liao, Liu, Marfatia, PRD 106, L031702 (2022) [2202.10622] (journal reference recalled; abstract only)", d2,
        f"Delta chi^2 = {d2:.2f} ({z2:.2f} sigma, 2 dof) at k = {k:.3f}, q = {q * 1e4:.2f} x 1e-4; against "
        f"standard Lindhard with k free too (k = {lind.best_fit['k']:.3f}): Delta chi^2 = {d1:.2f} ({z1:.2f} sigma, "
        "1 dof)",
        "`docs/make_results.py:dresden_kq_row` (`cevnsjax.analyses.dresden_ii.build_model(None, "
        "extra_priors={'k': Uniform(0.10, 0.30)}).fit()`)",
        f"{z2:.1f} sigma: agrees with the abstract's 2 sigma (the talk's 2.5 is not reproduced). k runs to the "
        "edge of its range: the spectrum alone does not fix k (k-q degeneracy, figure below), so the 1-dof test "
        "with k free is weaker. Converged recoil grid; same likelihood as the previous row.",
        RTOL_FIT, "", {"significance_sigma": z2, "k_best": k, "q_best": q, "delta_chi2_k_free": d1,
                       "significance_k_free": z1})


def mimic_row():
    """2104.01811 scenario: Asimov data with modified Lindhard (k = 0.153, q = -15e-5), fitted with the standard
    Lindhard QF (k = 0.157) and SM only / + light scalar / + light Z'; the reactor flux below 2 MeV included."""
    from cevnsjax.analyses import qf_mimics as M

    out = {}
    masses = np.geomspace(*M.M_RANGE, 9)
    for le in (True, False):
        a = types.SimpleNamespace(k_std=0.157, bkg=0.0, threshold=0.2, low_energy=le)
        _, obs = M.truth_counts(a)
        smm = M.build(None, a)  # no free parameters: -2 ln L of the SM, the likelihood of the mediator fits
        sm = float(smm.minus2lnL({}, {smm.analyses[0].experiment.name: obs}))
        fits = {w: M.fit_mediator(w, a, obs, masses, {})[1] for w in ("scalar", "zprime")}
        out[le] = (obs, sm, fits)
    obs, sm, fits = out[True]
    s, zp = fits["scalar"], fits["zprime"]
    return _row(
        "mimic_2104", "QF mimics new physics (3.9 GW, 20 m, 7 kg yr Ge, 0.2-1.5 keVee): chi^2 of SM + light scalar "
        "with standard Lindhard (k = 0.157) against Asimov data with modified Lindhard k = 0.153, q = -15e-5",
        "both a light Z' and a light scalar with the standard Lindhard QF fit the SM spectrum with the modified "
        "QF", "Liao, Liu, Marfatia, PRD 104, 015005 (2021) [2104.01811] (journal reference recalled); the talk",
        s.minus2lnL,
        f"{obs.size} bins, {obs.sum():.0f} events: SM chi^2 = {sm:.0f}; scalar chi^2 = {s.minus2lnL:.2f} "
        f"(g = {s.best_fit['g_scalar']:.3g}, m = {s.best_fit['m_scalar_MeV']:.3g} MeV); Z' chi^2 = "
        f"{zp.minus2lnL:.1f} (g = {zp.best_fit['g_zprime']:.3g}, m = {zp.best_fit['m_zprime_MeV']:.3g} MeV); "
        f"flux above 2 MeV only: SM {out[False][1]:.0f}, scalar {out[False][2]['scalar'].minus2lnL:.2f}",
        "`models/qf_mimics_new_physics.py --low-energy` (`cevnsjax.analyses.qf_mimics.fit_mediator`, 9 masses "
        "0.1-1000 MeV)",
        f"Scalar: reproduced (chi^2 {s.minus2lnL:.1f} for {obs.size} bins vs {sm:.0f} for the SM). Z': much "
        "better than the SM but "
        "not a fit, and it runs to the heaviest mass (contact limit); the paper's Z' fit may use settings we do "
        "not have (no full text here). Flux: Kopeikin tables below 2 MeV + 238U capture, Huber-Mueller above; "
        "Helm form factor, tree-level couplings, Dresden-II Ge resolution renormalised to E_ee >= 0.",
        RTOL_FIT, "", {"chi2_sm": sm, "chi2_zprime": zp.minus2lnL, "g_scalar": s.best_fit["g_scalar"],
                       "m_scalar_MeV": s.best_fit["m_scalar_MeV"], "chi2_scalar_no_low_flux": out[False][2]["scalar"].minus2lnL})


def dresden_kq_grid(best, ks, qs):
    """Profile chi^2 (7 backgrounds re-fitted) on a (k, q) grid, k flat (no prior): (len(ks), len(qs))."""
    import cevnsjax as cj
    from cevnsjax.analyses.dresden_ii import build_model

    m = build_model(None, extra_priors={"k": cj.Uniform(0.10, 0.30)})
    K, Q = np.meshgrid(np.asarray(ks, float), np.asarray(qs, float), indexing="ij")
    prof = m.profile(["k", "q"], np.stack([K.ravel(), Q.ravel()], -1), init=best.best_fit)
    return np.asarray(prof.minus2lnL, float).reshape(K.shape)


def plot_dresden_kq(path, best):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ks = np.linspace(0.12, 0.30, 10)
    qs = np.linspace(-5e-4, 1e-4, 13)
    chi2 = dresden_kq_grid(best, ks, qs)
    d = chi2 - chi2.min()
    fig = Figure(figsize=(5.4, 4.0))
    ax = fig.subplots()
    cs = ax.contourf(qs * 1e4, ks, d, levels=[0, 2.30, 6.18, 11.83, 30], colors=["C0", "C9", "lightblue", "0.92"])
    ax.contour(qs * 1e4, ks, d, levels=[2.30, 6.18, 11.83], colors="k", linewidths=0.6)
    i, j = np.unravel_index(np.argmin(d), d.shape)
    ax.plot(qs[j] * 1e4, ks[i], "r*", ms=10, label="best fit on the grid")
    ax.axvline(0, color="k", lw=0.8, ls="--", label="q = 0 (standard Lindhard)")
    ax.axhline(0.157, color="grey", lw=0.6, ls=":", label="Lindhard k = 0.157")
    ax.axhspan(0.158, 0.166, color="C1", alpha=0.3, label="CONUS+ k = 0.162 +- 0.004")
    ax.set_xlabel(r"$q\times10^{4}$")
    ax.set_ylabel("k")
    ax.set_title(r"Dresden-II, SM: profile $\Delta\chi^2$ (1/2/3$\sigma$, 2 dof); k flat: the spectrum "
                 "alone does not fix k", fontsize=7)
    ax.legend(fontsize=7, loc="lower left", frameon=True)
    fig.colorbar(cs, ax=ax, label=r"$\Delta\chi^2$")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ----------------------------------------------------------------------------------------- CICENNS
def cicenns_rows(timings):
    import cevnsjax as cj
    from cevnsjax.analyses import cicenns as CS

    rows = []
    t = time.perf_counter()
    e = cj.load_preset("cicenns", with_data=False)
    n = float(np.sum(cj.predict(e.defaults, e.prepare()).signal))
    c = dataclasses.replace(e, name="coherent_talk", mass_kg=14.6, source=cj.PionDAR.from_flux(4.7e7 / 3, 19.3))
    nc = float(np.sum(cj.predict(c.defaults, c.prepare()).signal))
    pn, pc = float(pdg_signal(e).sum()), float(pdg_signal(c).sum())
    by = CSI2021_BEAM_YEARS
    rows.append(_row(
        "cicenns_events", "CICENNS (300 kg CsI, 10.5 m, 2.0e7 /cm^2/s) SM CEvNS events per year",
        "~2500 / yr (the talk's COHERENT line, 14.6 kg, 19.3 m, 4.7e7: '306 / yr')", "the talk (CICENNS table); "
        "COHERENT PRL 129, 081801 (2022) for 306 and 341", n,
        f"{n:.0f} / yr tree-level couplings (PDG radiative: {pn:.0f}); COHERENT's configuration with the same "
        f"response: {nc:.1f} / yr (PDG: {pc:.1f}), x {by:.2f} beam-years = {nc * by:.0f} (PDG: {pc * by:.0f})",
        "`cj.predict(load_preset('cicenns'))`; COHERENT: same experiment, 14.6 kg, `PionDAR.from_flux(4.7e7/3, 19.3)`",
        f"CICENNS {100 * (n / 2500 - 1):+.0f} %. COHERENT's 306 is not a yearly SM rate: it is the fitted (observed) "
        f"total of the full CsI data set, 3.198e23 POT = {by:.2f} beam-years at 1.4 MW, 1 GeV; the like-for-like "
        f"number is the SM expectation of that exposure, 341 (+-13 %): ours {100 * (nc * by / 341 - 1):+.1f} % "
        f"(PDG {100 * (pc * by / 341 - 1):+.1f} %). The talk's ratio 2500/306 = 8.17 mixes the two; the mass x "
        f"flux ratio is {(300 / 14.6) * (2.0 / 4.7):.3f} (ours: {n / nc:.3f}).",
        RTOL_DETERMINISTIC, "events / yr", {"coherent_talk_flux": nc, "coherent_exposure_sm": nc * by,
                                            "pdg_couplings": pn, "coherent_talk_flux_pdg": pc}))
    timings["cicenns_events"] = time.perf_counter() - t

    t = time.perf_counter()
    unc = dict(flux_unc=0.05, qf_unc=0.038, acc_unc=0.03, brn_unc=0.25)
    ex, prep, info = CS.build_experiment(unc["brn_unc"])
    jm = CS.build(ex, prep, {"signal_scale": cj.Uniform(0.0, 2.0)}, CS.nuisance_priors(info, **unc))
    sf = CS.fisher(jm).errors["signal_scale"]
    jm0 = CS.build(ex, prep, {"signal_scale": cj.Uniform(0.0, 2.0)}, {})
    s0 = CS.fisher(jm0).errors["signal_scale"]
    # breakdown: each systematic alone (with the steady-state constraint), added in quadrature to the rest
    only = {w: CS.fisher(CS.build(ex, prep, {"signal_scale": cj.Uniform(0.0, 2.0)},
                                  CS.nuisance_priors(info, **unc, which=("ss",) if w == "ss" else ("ss", w)))
                         ).errors["signal_scale"] for w in ("ss", "flux", "qf", "acc", "brn")}
    part = {w: 100 * math.sqrt(max(only[w] ** 2 - only["ss"] ** 2, 0.0)) for w in ("flux", "qf", "acc", "brn")}
    driver = max(part, key=part.get)
    rows.append(_row(
        "cicenns_precision", "CICENNS CEvNS cross-section precision (1 yr, Asimov, Fisher)",
        "~6.5 % (today ~16 % measured, 4.8 % SM theory)", "the talk (SM measurements)", 100 * sf,
        f"{100 * sf:.2f} % = statistics + backgrounds {100 * only['ss']:.2f} % (+) flux {part['flux']:.2f} % (+) QF "
        f"{part['qf']:.2f} % (+) acceptance {part['acc']:.2f} % (+) beam neutrons {part['brn']:.2f} % (each alone, "
        f"in quadrature); fixed backgrounds: {100 * s0:.2f} %",
        "`models/cicenns_sensitivity.py`: `fisher(build(..., {'signal_scale': ...}, nuisance_priors(...)))`",
        "Assumed systematics (the talk states none): flux 5 %, QF 3.8 %, acceptance 3 %, beam neutrons 25 %, "
        "steady-state background scaled from COHERENT 2017 (~6000 events). The driver is the "
        f"{ {'flux': 'neutrino flux', 'qf': 'quenching factor', 'acc': 'acceptance', 'brn': 'beam-neutron'}[driver]} "
        "term; 4 % flux gives 6.8 %. The talk's 6.5 % needs systematics below these assumptions.",
        RTOL_DETERMINISTIC, "%", {"stat_only_percent": 100 * s0, "signal_sm": info["signal_sm"],
                                  "steady_state": info["steady_state"],
                                  **{f"{w}_percent": v for w, v in part.items()}}))
    timings["cicenns_precision"] = time.perf_counter() - t
    return rows


# ----------------------------------------------------------------------------------------- reactor
def texono_row(timings):
    import cevnsjax as cj

    t = time.perf_counter()
    rows = {r["channel"]: r for r in cj.Reactor(1.0, 10.0, fission_fractions="texono").yield_table()}
    ours = ", ".join(f"{k} {v['nu_per_fission']:.3f}" for k, v in rows.items())
    timings["texono"] = time.perf_counter() - t
    return [_row(
        "texono_yields", "Consistency check (not a prediction): reactor nu-bar yield per fission (TEXONO table), "
        "total incl. 238U(n,gamma)",
        "U235 3.4, U238 0.5, Pu239 1.8, Pu241 0.4, 238U(n,g) 1.2 (per fission)", "TEXONO, hep-ex/0605006; the talk",
        rows["total"]["nu_per_fission"], ours,
        "`Reactor(1, 10, fission_fractions='texono').yield_table()`",
        "A consistency check of our bookkeeping: the rows are the table's own products of fission rates x "
        "yields, so agreement to its rounding is expected, not a test of physics. The capture branch is 17 % of "
        "the total and all of it below 1.3 MeV.",
        RTOL_DETERMINISTIC, "nu / fission", {k: v["nu_per_fission"] for k, v in rows.items() if k != "total"})]


def unfolding_toys(problem, n_toys, seed, betas=UNFOLD_BETAS):
    """nu_hat (n_betas, n_toys, m) of the toys of run seed ``seed`` on the beta grid: the estimator part of
    ``cevnsjax.stats.unfold.run_unfolding`` (the same toys, ``unfold.ensemble_toys``, and grid; its bias
    statistics, which need a Jacobian per toy and ~1 minute of compilation, are not needed for the bands)."""
    import jax.numpy as jnp

    from cevnsjax.stats import unfold as U

    L = jnp.asarray(U.second_difference_matrix(problem.m))
    toys = jnp.asarray(U.ensemble_toys(problem, seed, 0, n_toys))
    return np.asarray(_estimates(*(jnp.asarray(x) for x in (problem.R, problem.h, problem.b)), toys,
                                 jnp.asarray(betas), L))


def _estimates(R, h, b, toys, betas, L):
    """jit(vmap over betas of vmap over toys) of cevnsjax.stats.unfold.tikhonov_estimate, compiled once per shape."""
    global _EST
    if "_EST" not in globals():
        import jax

        from cevnsjax.stats import unfold as U

        _EST = jax.jit(lambda R, h, b, toys, betas, L: jax.vmap(
            lambda be: jax.vmap(lambda n: U.tikhonov_estimate(R, h, b, n, be, L))(toys))(betas))
    return _EST(R, h, b, toys, betas, L)


def unfolding_upper(problem, n_toys=UNFOLD_TOYS, seed=0, betas=UNFOLD_BETAS):
    """As run_unfolding(beta="physical"): median per-toy physical beta, toy 95 % upper bound on sum nu dE."""
    from cevnsjax.stats import unfold as U

    nu = unfolding_toys(problem, n_toys, seed, betas)
    bp = U.physical_beta(betas, nu)
    b_phys = float(np.median(bp))
    k = int(np.argmin(np.abs(np.log(betas) - np.log(max(b_phys, betas[0])))))
    if not np.isclose(betas[k], b_phys, rtol=1e-9):
        nu_k = unfolding_toys(problem, n_toys, seed, np.asarray([b_phys]))[0]
    else:
        nu_k = nu[k]
    w = problem.widths_MeV
    true = float(problem.nu_true @ w)
    return {"beta_physical": b_phys, "upper95": float(np.percentile(nu_k @ w, 95)), "true": true,
            "band68": np.percentile(nu_k, [16, 84], axis=0), "band95": np.percentile(nu_k, [2.5, 97.5], axis=0),
            "median": np.median(nu_k, axis=0)}


def separation(a, b):
    """max over bins of |mean_a - mean_b| / sqrt(sd_a^2 + sd_b^2) over toys (as tests/test_unfold.py)."""
    return float(np.max(np.abs(a.mean(0) - b.mean(0)) / np.hypot(a.std(0), b.std(0))))


def bands_overlap(a, b):
    """Per bin: do the toy 68 % bands (16th-84th percentiles) of a and b overlap (as tests/test_unfold.py)?"""
    la, ha = np.percentile(a, [16, 84], axis=0)
    lb, hb = np.percentile(b, [16, 84], axis=0)
    return (la < hb) & (lb < ha)


def unfolding_rows(dd, timings, plots_dir=None):
    from cevnsjax.stats import unfold as U

    rows, res = [], {}
    t = time.perf_counter()
    for s in (1, 2):
        p = U.build_problem(s, data_dir=dd)
        u = unfolding_upper(p)
        res[s] = (p, u)
        sc = U.SCENARIOS[s]
        ratio = u["upper95"] / u["true"]
        rows.append(_row(
            f"unfold_s{s}", f"Unfolding, scenario {s} ({sc.exposure_kg_yr:g} kg yr, {sc.background_ckkd:g} "
            f"ckkd, {sc.threshold_eV:g} eV): 95 % upper bound on the flux {p.nu_edges_MeV[0]:.2f}-1.8 MeV / truth",
            "a meaningful upper bound on the flux below 1.8 MeV", "Liao, Liu, Marfatia, PRD 108 [2302.10460]; "
            "the talk", ratio,
            f"{ratio:.3f} at the physical beta {u['beta_physical']:.3g} ({UNFOLD_TOYS} toys)",
            f"`run_unfolding({s}, n_toys={UNFOLD_TOYS})` (estimator part; `docs/make_results.py:unfolding_upper`)",
            "Reproduced: the bound is within a factor 2 of the truth (1000 toys: "
            f"{'1.52' if s == 1 else '1.38'}). NUCLEUS-like Ge at the Chooz VNS as one 4.25 GW core at 58.8 m, "
            "10 neutrino bins, flux above 1.8 MeV known.",
            RTOL_TOYS, "", {"beta_physical": u["beta_physical"], "upper95": u["upper95"], "true": u["true"]}))
    timings["unfold_s12"] = time.perf_counter() - t

    t = time.perf_counter()
    pc = U.build_problem(3, data_dir=dd)
    pn = U.build_problem(3, data_dir=dd, capture=False)
    nc = unfolding_toys(pc, UNFOLD_TOYS, 0)
    nn = unfolding_toys(pn, UNFOLD_TOYS, 1)
    k20 = int(np.argmin(np.abs(np.log(UNFOLD_BETAS / 20.0))))
    bp = float(np.median(U.physical_beta(UNFOLD_BETAS, nc)))
    kp = int(np.argmin(np.abs(np.log(UNFOLD_BETAS / bp))))
    z20, zp = separation(nc[k20], nn[k20]), separation(nc[kp], nn[kp])
    n_overlap = int(np.sum(bands_overlap(nc[kp], nn[kp])))
    rows.append(_row(
        "unfold_s3", "Unfolding, scenario 3 (300 kg yr, 1 ckkd, 1 eV): separation of the 238U(n,gamma) "
        "component at beta ~ 20 (max over bins of |mean difference| / combined toy sd)",
        "beta = 20 separates the capture component; at the smaller physical beta the bands overlap considerably",
        "Liao, Liu, Marfatia [2302.10460]; the talk", z20,
        f"z = {z20:.1f} at beta = {UNFOLD_BETAS[k20]:.1f}; physical beta {bp:.2g}, where z = {zp:.2f} and the "
        f"68% bands overlap in {n_overlap} of {nc.shape[-1]} bins",
        f"`beta_scan` estimator on {UNFOLD_TOYS} toys with and without capture (`docs/make_results.py:unfolding_rows`)",
        "Both reproduced: the physical criterion (per toy, median) picks a beta ~ 1e-6, where the bands overlap; "
        "the beta grid must reach down to the normal unfolding (at the former grid bottom 1e-4 every toy was "
        "already positive and z = 4.8).",
        RTOL_TOYS, "", {"beta_physical": bp, "z_physical": zp, "bins_overlapping_physical": n_overlap}))
    rows.append(unfolding_beta_row(pc, nc, nn))
    timings["unfold_s3"] = time.perf_counter() - t
    if plots_dir is not None:
        t = time.perf_counter()
        plot_unfolding(Path(plots_dir) / "unfolding.png", res, pc, nc, nn, k20)
        timings["unfolding_plot"] = time.perf_counter() - t
    return rows


def unfolding_beta_scale(problem):
    """beta at which the regularisation term balances the chi^2 curvature, in the paper's chi^2 convention
    chi2 = (n - mu)^T V^-1 (n - mu), V = diag(n) (Asimov n = mu): tr(R^T V^-1 R) / tr(L^T L)."""
    from cevnsjax.stats import unfold as U

    R = np.asarray(problem.R)
    n = R @ np.asarray(problem.nu_true) + np.asarray(problem.h) + np.asarray(problem.b)
    L = np.asarray(U.second_difference_matrix(problem.m))
    return float(np.trace(R.T @ (R / np.maximum(n, 1.0)[:, None])) / np.trace(L.T @ L))


def unfolding_beta_row(pc, nc, nn):
    z = np.array([separation(nc[i], nn[i]) for i in range(len(UNFOLD_BETAS))])
    above = np.nonzero(z > 3.0)[0]
    b3 = float(UNFOLD_BETAS[above[0]]) if above.size else math.inf
    bal = unfolding_beta_scale(pc)
    z20 = z[int(np.argmin(np.abs(np.log(UNFOLD_BETAS / 20))))]
    return _row(
        "unfold_beta", "Unfolding, scenario 3: the beta scale in the paper's chi^2 convention (V = diag(n)): Asimov "
        "balance beta tr(R^T V^-1 R) / tr(L^T L), where regularisation and data weigh equally",
        "beta = 20 separates the capture component; the physical beta is much smaller",
        "Liao, Liu, Marfatia [2302.10460]; the talk", bal,
        f"balance beta {bal:.3g}; separation z > 3 from beta = {b3:.2g} (grid x{UNFOLD_BETAS[1] / UNFOLD_BETAS[0]:.2f}, "
        f"{UNFOLD_TOYS} toys); z = {z20:.1f} at beta ~ 20",
        "`docs/make_results.py:unfolding_beta_scale` (Asimov) and `unfolding_beta_row` (the `beta_scan` toys of "
        "the previous row)",
        "Same convention as the paper: nu in nu-bar / (MeV fission), chi^2 = (n - mu)^T V^-1 (n - mu) with V = "
        "diag(n) of each toy (Neyman, zeros -> 1), S = sum of squared second differences. On this scale beta = 20 "
        "is moderate (a tenth of the balance point) and well inside the separating range; separation already "
        "holds far below it, yet at the physical beta (previous row) z ~ 1: the conclusion hinges on the "
        "criterion, not on the beta units.",
        RTOL_TOYS, "", {"beta_z3": b3, "z_beta20": z20})


def plot_unfolding(path, res, pc, nc, nn, k20):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3)
    for ax, s in zip(axes[:2], (1, 2)):
        p, u = res[s]
        e = p.nu_edges_MeV
        c = 0.5 * (e[1:] + e[:-1])
        ax.stairs(p.nu_true, e, color="k", label="true (with 238U capture)")
        ax.fill_between(c, *u["band95"], color="C0", alpha=0.25, step=None, label="toys 95 %")
        ax.fill_between(c, *u["band68"], color="C0", alpha=0.45, label="toys 68 %")
        ax.plot(c, u["median"], "o", color="C0", ms=3)
        ax.set_title(f"scenario {s}: physical beta = {u['beta_physical']:.3g}", fontsize=9)
    e = pc.nu_edges_MeV
    c = 0.5 * (e[1:] + e[:-1])
    ax = axes[2]
    ax.stairs(pc.nu_true, e, color="k", label="true, with capture")
    for nu, col, lab in ((nc[k20], "C3", "with capture"), (nn[k20], "C2", "without capture")):
        lo, hi = np.percentile(nu, [16, 84], axis=0)
        ax.fill_between(c, lo, hi, color=col, alpha=0.4, label=f"unfolded 68 %, {lab}")
    ax.set_title(rf"scenario 3: $\beta$ = {UNFOLD_BETAS[k20]:.1f}", fontsize=9)
    for ax in axes:
        ax.set_xlabel(r"$E_\nu$ [MeV]")
        ax.set_ylabel(r"$\bar\nu$ / (MeV fission)")
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ----------------------------------------------------------------------------------------- driver
# ----------------------------------------------------------------------------------------- global fit
def global_rows(timings):
    """sin^2 theta_W and R_n(CsI) from the global fit of models/global_fit.py (Dresden-II + CsI 2017 + CsI 2021 +
    LAr 2020; every experiment's nuisances, Ge (k, q) profiled): MLE, Hessian errors, 11-point profiles."""
    from cevnsjax.analyses import global_fit as G

    t = time.perf_counter()
    gm = G.global_model(G.DATASETS, ("sin2", "rn"))
    fit = gm.fit()
    best = {"params": fit.best_fit, "errors": fit.errors, "minus2lnL": float(fit.minus2lnL)}
    rn0 = G.csi_default_radius(gm)
    iv = {}
    for p in ("sin2_theta_w", G.RN_SITE):
        v, e = best["params"][p], best["errors"][p]
        g = np.linspace(v - 2.5 * e, v + 2.5 * e, 11)
        iv[p] = list(gm.profile(p, g, best=fit).interval(0.6827))
    timings["global"] = time.perf_counter() - t
    cmd = ("`cevnsjax.analyses.global_fit.global_model(DATASETS, ('sin2', 'rn'))`: `.fit()`, `.profile(...)` "
           "(as `python models/global_fit.py`)")
    common = ("Global: Dresden-II (Gaussian chi^2, modified Lindhard k ~ N(0.162, 0.004), q free, 7 backgrounds) + "
              "CsI 2017 + CsI 2021 + LAr 2020 (Poisson, their own flux/QF/acceptance/background nuisances); "
              "27 parameters. The 2021 CsI data set contains the 2017 one: those events count twice here.")
    s2, (a, b) = best["params"]["sin2_theta_w"], iv["sin2_theta_w"]
    e2 = best["errors"]["sin2_theta_w"]
    rn, (c, d) = rn0 + best["params"][G.RN_SITE], iv[G.RN_SITE]
    ern = best["errors"][G.RN_SITE]
    return [
        _row("global_sin2", "Global CEvNS fit (Dresden-II + COHERENT CsI 2017 + CsI 2021 + LAr 2020): sin^2 theta_W "
             "(CsI neutron radius free)",
             "0.220 +0.028 -0.026 from CsI 2021 alone (recalled in REFERENCE.md section 8, not verified); published "
             "combined COHERENT CsI + LAr values are not in the project's references",
             "COHERENT, PRL 129, 081801 (2022) [2110.07730]", s2,
             f"{s2:.4f} +{b - s2:.4f} -{s2 - a:.4f} (profile, 68 % CL; Hessian +-{e2:.4f}); SM 0.23857",
             cmd, f"{(s2 - 0.220) / (0.028 if s2 > 0.220 else 0.026):+.1f} sigma of the CsI 2021 error from 0.220. "
             + common + " Our interval is wider: the CsI radius is free (R_n and sin^2 theta_W both move the CsI "
             "rate) and the flux (10 %) and QF nuisances are profiled (COHERENT's own treatment differs; not verified).",
             RTOL_FIT, "", {"lo68": a, "hi68": b, "hessian_err": e2, "minus2lnL": best["minus2lnL"]}),
        _row("global_rn_csi", "Global CEvNS fit: CsI neutron rms radius R_n (mean of Cs and I; sin^2 theta_W free)",
             "5.5 +0.9 -1.1 fm from CsI 2017 alone (Cadeddu et al., verified abstract); combined CsI + LAr values are "
             "not in the project's references",
             "Cadeddu et al., PRL 120, 072501 (2018) [1710.02730]", rn,
             f"{rn:.2f} +{rn0 + d - rn:.2f} -{rn - rn0 - c:.2f} fm (profile, 68 % CL; Hessian +-{ern:.2f}); "
             f"Klein-Nystrand default {rn0:.2f} fm", cmd,
             f"{rn - 5.5:+.2f} fm from 5.5, inside its interval. " + common + " Proton radii at the muonic-atom values "
             "(as Cadeddu et al.). The interval is narrower than the 2017-only one because the 2021 data enter, "
             "although sin^2 theta_W is free here; it rests on the CsI QF / light-yield and flux nuisances.",
             RTOL_FIT, "fm", {"lo68": rn0 + c, "hi68": rn0 + d, "hessian_err": ern}),
    ]


def compute(data_dir=None, plots_dir=None, only=None) -> dict:
    """Every row of the results table: ``{"rows": [...], "timings_s": {...}, "versions": {...}}``.

    ``data_dir``: the published-data folder (default ``$CEVNSJAX_DATA`` / ``../shared/data``);
    ``plots_dir``: where to write the two PNGs (None: no figures); ``only``: subset of the groups
    ``coherent, dresden, cicenns, reactor, unfolding, global``.
    """
    import jax

    import cevnsjax as cj
    from cevnsjax.io.location import data_dir as find_data_dir

    cj.enable_x64()
    dd = Path(data_dir) if data_dir is not None else find_data_dir(required=True)
    groups = {
        "coherent": lambda tm: coherent_rows(dd, tm),
        "dresden": lambda tm: dresden_rows(dd, tm, plots_dir),
        "cicenns": cicenns_rows,
        "reactor": texono_row,
        "unfolding": lambda tm: unfolding_rows(dd, tm, plots_dir),
        "global": global_rows,
    }
    timings, rows = {}, []
    t0 = time.perf_counter()
    for name, fn in groups.items():
        if only is None or name in only:
            rows += fn(timings)
    timings = {k: round(v, 2) for k, v in timings.items()}
    timings["total"] = round(time.perf_counter() - t0, 2)
    return {"rows": rows, "timings_s": timings,
            "versions": {"jax": jax.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}}


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def markdown(results: dict) -> str:
    lines = [
        "# Results: cevnsjax against the published numbers",
        "",
        "Generated by `python docs/make_results.py` (do not edit by hand); the same numbers, machine-readable, are in",
        "[`results.json`](results.json). `tests/test_results_table.py` recomputes them and fails when one drifts",
        "beyond its tolerance (`rtol` column: 1e-6 deterministic, 1e-4 maximum-likelihood fits, 5e-2 seeded toys).",
        "Settings are the fast ones (200 unfolding toys; one fit start); the notebooks in `notebooks/` and the scripts",
        "in `models/` show the analyses behind each row.",
        "",
        "| quantity | published (source) | ours | command | difference explained | rtol |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append("| " + " | ".join(_md_escape(x) for x in (
            r["quantity"], f"{r['published']} ({r['source']})", r["ours"], r["command"], r["difference"],
            f"{r['rtol']:g}")) + " |")
    lines += ["", "Figures written by the same command:", "",
              "![Dresden-II (k, q)](dresden_ii_kq.png)", "",
              "![Unfolded reactor flux](unfolding.png)", "",
              f"Run time of the last generation: {results['timings_s']['total']:.0f} s "
              f"(jax {results['versions']['jax']}).", ""]
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    (out / "results.md").write_text(markdown(results))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent), help="output folder (default docs/)")
    ap.add_argument("--no-plots", action="store_true", help="skip the two figures")
    ap.add_argument("--only", default=None, help="comma list of groups (coherent,dresden,cicenns,reactor,unfolding); "
                                                  "the files are then NOT written, the rows printed")
    a = ap.parse_args(argv)
    only = None if a.only is None else set(a.only.split(","))
    if not a.no_plots:
        Path(a.out).mkdir(parents=True, exist_ok=True)
    res = compute(plots_dir=None if a.no_plots else a.out, only=only)
    for r in res["rows"]:
        print(f"{r['id']:18s} {r['value']:.6g}  | {r['ours']}")
    print("timings [s]:", res["timings_s"])
    if only is None:
        write(res, a.out)
        print(f"wrote {Path(a.out) / 'results.md'} and results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
