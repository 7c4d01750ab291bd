"""Compute the headline numbers of cevnsjax against the published values and write the results table.

    python docs/make_results.py                 # writes docs/results.md, docs/results.json and two PNGs
    python docs/make_results.py --no-plots      # the numbers only
    python docs/make_results.py --out /tmp/res  # somewhere else

Every number is computed here with the library (presets in ``cevnsjax/experiments``, the published data
from ``$CEVNSJAX_DATA``, default ``../shared/data``, the analysis helpers in ``models/``), at small,
fast settings with fixed seeds: ~1.5-3 minutes on 2 CPU cores. ``tests/test_results_table.py`` calls
:func:`compute` and fails when a number drifts from ``docs/results.json`` beyond the row's stated
relative tolerance.

Rows (``ROW_IDS``): COHERENT CsI 2017 (SM prediction, fitted signal, significance), CsI 2021 (SM
prediction, fitted signal), LAr 2020 (CEvNS vs the collaboration's template), Dresden-II (reactor
flux, the q < 0 preference), CICENNS vs COHERENT (events per year, cross-section precision by Fisher),
the TEXONO yield table and the reactor-flux unfolding (scenarios 1-3 of the talk).

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
if str(ROOT / "models") not in sys.path:
    sys.path.insert(0, str(ROOT / "models"))

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

ROW_IDS = ("csi2017_sm", "csi2017_fit", "csi2021_sm", "csi2021_fit", "lar2020_sm", "dresden_flux",
           "dresden_q", "cicenns_events", "cicenns_precision", "texono_yields", "unfold_s1", "unfold_s2",
           "unfold_s3")


def _row(id, quantity, published, source, value, ours, command, difference, rtol, unit="", extra=None):
    return {"id": id, "quantity": quantity, "published": published, "source": source, "value": float(value),
            "unit": unit, "extra": {k: float(v) for k, v in (extra or {}).items()}, "ours": ours,
            "command": command, "difference": difference, "rtol": rtol, "rtol_reason": REASONS[rtol]}


# ----------------------------------------------------------------------------------------- COHERENT
def coherent_rows(dd, timings):
    import cevnsjax as cj
    import coherent_csi as CC
    from _common import Fitter
    from cevnsjax.io.releases.coherent_csi_2017 import load_coherent_csi_2017
    from cevnsjax.io.releases.coherent_lar_2020 import load_coherent_lar_2020
    from cevnsjax.stats.fit import significance

    rows = []
    t = time.perf_counter()
    e17 = cj.load_preset("coherent_csi_2017")
    s17 = np.asarray(cj.predict(e17.defaults, e17.prepare()).signal)
    roi = load_coherent_csi_2017(dd).roi_mask()
    n_roi, n_all = float(s17[roi].sum()), float(s17.sum())
    rows.append(_row(
        "csi2017_sm", "COHERENT CsI 2017: SM CEvNS prediction in the ROI (6-30 PE, t <= 6 us)",
        "173 +- 48", "COHERENT, Science 357, 1123 (2017) [1708.01294]; the talk", n_roi,
        f"{n_roi:.1f} (whole released grid 0-50 PE x 0-12 us: {n_all:.1f})",
        "`cj.predict(load_preset('coherent_csi_2017'))`, summed over `roi_mask()`",
        f"{100 * (n_roi / 173 - 1):+.1f} %, well inside the +-28 % band. Preset choices: Klein-Nystrand form factor, "
        "Poisson PE smearing, acceptance at 2-PE bin centres (Helm would give +6 %, no PE smearing -8 %).",
        RTOL_DETERMINISTIC, "events", {"whole_grid": n_all}))
    timings["csi2017_sm"] = time.perf_counter() - t

    # fitted signal: models/coherent_csi.py likelihood (binned Poisson on PE x t, nuisances of the release)
    t = time.perf_counter()
    out = {}
    for name in ("coherent_csi_2017", "coherent_csi_2021"):
        e, n_ac = CC.load_experiment(name)
        prep = e.prepare()
        jm = CC.build((name,), "signal", {name: (e, n_ac, prep)})
        f = Fitter(jm)
        best = f.fit(seed=0)
        null = f.fit(init=best.best_fit, fixed={"signal_scale": 0.0}, hessian=False)
        sm = float(np.sum(cj.predict(e.defaults.replace(backgrounds=()), prep).signal))  # this (fast) grid
        d2 = max(null.minus2lnL - best.minus2lnL, 0.0)
        out[name] = (best.best_fit["signal_scale"], best.errors["signal_scale"], sm, d2, significance(d2, 1),
                     best.converged)
    mu, err, sm, d2, z, ok = out["coherent_csi_2017"]
    rows.append(_row(
        "csi2017_fit", "COHERENT CsI 2017: fitted CEvNS events (signal strength x SM prediction)",
        "134 +- 22 observed; 6.7 sigma", "COHERENT, Science 357, 1123 (2017); the talk", mu * sm,
        f"{mu * sm:.1f} +- {err * sm:.1f} over the whole grid (signal strength {mu:.3f} +- {err:.3f}); "
        f"ROI: {mu * n_roi:.1f} +- {err * n_roi:.1f}; no-CEvNS Delta chi^2 = {d2:.1f} ({z:.1f} sigma)",
        "`models/coherent_csi.py` likelihood: `Fitter(build(('coherent_csi_2017',), 'signal', ...)).fit()`",
        f"{100 * (mu * sm / 134 - 1):+.0f} %, within 1 sigma. Our error includes the release's systematics as "
        "nuisances (flux 10 %, QF 19 %, acceptance, backgrounds); the published +-22 and the likelihood "
        "(2-D PDFs with their own background model) differ. Significance from Wilks' theorem.",
        RTOL_FIT, "events",
        {"signal_strength": mu, "signal_strength_err": err, "events_err": err * sm, "sm_fast_grid": sm,
         "roi_fitted": mu * n_roi, "delta_chi2_no_cevns": d2, "significance_sigma": z}))
    mu21, err21, sm21f, d221, z21, _ = out["coherent_csi_2021"]
    timings["csi_fits"] = time.perf_counter() - t

    t = time.perf_counter()
    e21 = cj.load_preset("coherent_csi_2021")
    n21 = float(np.sum(cj.predict(e21.defaults, e21.prepare()).signal))
    rows.append(_row(
        "csi2021_sm", "COHERENT CsI 2021: SM CEvNS prediction in the ROI (0-60 PE, 0-6 us)",
        "341 +- 11 (th) +- 42 (exp); 333 is also quoted", "COHERENT, PRL 129, 081801 (2022) [2110.07730]",
        n21, f"{n21:.1f}", "`cj.predict(load_preset('coherent_csi_2021'))`, total",
        f"{100 * (n21 / 341 - 1):+.1f} % against 341 (the number we compare with; {100 * (n21 / 333 - 1):+.1f} % "
        "against 333). Preset: Klein-Nystrand, PDG couplings, the paper's PE bins, the 2017 time PDFs in place "
        "of snsFlux2D.root; COHERENT's own conventions (Helm r_n = 5.10 fm) give 332.",
        RTOL_DETERMINISTIC, "events"))
    rows.append(_row(
        "csi2021_fit", "COHERENT CsI 2021: fitted CEvNS events", "306 +- 20 observed; 11.6 sigma",
        "COHERENT, PRL 129, 081801 (2022)", mu21 * n21,
        f"{mu21 * n21:.1f} +- {err21 * n21:.1f} (signal strength {mu21:.3f} +- {err21:.3f}); "
        f"no-CEvNS Delta chi^2 = {d221:.0f} ({z21:.1f} sigma)",
        "`models/coherent_csi.py` likelihood: `Fitter(build(('coherent_csi_2021',), 'signal', ...)).fit()`",
        f"{100 * (mu21 * n21 / 306 - 1):+.0f} %. Only the released ROI counts (9 PE x 5 t bins) and the "
        "smoothed anti-coincidence background are fitted, with BRN/NIN templates normalised to the fit code's "
        "18.4 and 5.6 events; the paper fits 3-D PDFs (PE, t, F90-like cuts) with more information.",
        RTOL_FIT, "events", {"signal_strength": mu21, "signal_strength_err": err21,
                             "delta_chi2_no_cevns": d221, "significance_sigma": z21}))

    elar = cj.load_preset("coherent_lar_2020")
    nlar = float(np.sum(cj.predict(elar.defaults, elar.prepare()).signal))
    tmpl = float(np.sum(load_coherent_lar_2020(dd).cevns))
    rows.append(_row(
        "lar2020_sm", "COHERENT LAr 2020 (Analysis A): SM CEvNS prediction, 0-120 keVee, -0.1-4.9 us",
        "128 +- 17 (the release's CEvNS template total)", "COHERENT, PRL 126, 012002 (2021); data release "
        "2006.12659", nlar, f"{nlar:.1f} (release template {tmpl:.1f})",
        "`cj.predict(load_preset('coherent_lar_2020'))`, total",
        f"{100 * (nlar / tmpl - 1):+.1f} %, inside the +-13 % uncertainty. Known differences: form factor "
        "(Klein-Nystrand would move it -3 %), QF +-1 sigma (+-1.2 %), the arrival-time model (~1.5 %).",
        RTOL_DETERMINISTIC, "events", {"template_total": tmpl}))
    timings["csi2021_lar"] = time.perf_counter() - t
    return rows


# ----------------------------------------------------------------------------------------- Dresden-II
def dresden_rows(dd, timings, plots_dir=None):
    import cevnsjax as cj
    import dresden_ii_quenching as DQ
    from _common import Fitter
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
        "fractions, Ma-2013 energies per fission, TEXONO yields). The preset normalises to 4.8e13 directly.",
        RTOL_DETERMINISTIC, "cm^-2 s^-1", {"no_capture": phi0, "spectral_with_tables": phis}))

    m = DQ.build_model(None)
    f = Fitter(m, scales=DQ.SCALES)
    best = f.fit(seed=0)
    null = f.fit(init=best.best_fit, fixed={"q": 0.0})
    test = compare(null, best)
    mk = DQ.build_model("conus_plus")
    fk = Fitter(mk, scales=DQ.SCALES)
    bk = fk.fit(init=best.best_fit, seed=0)
    nk = fk.fit(init=bk.best_fit, fixed={"q": 0.0})
    tk = compare(nk, bk)
    q, dq = best.best_fit["q"], best.errors["q"]
    rows.append(_row(
        "dresden_q", "Dresden-II: preference for q < 0 of the modified Lindhard QF (SM CEvNS), Delta chi^2(q = 0)",
        "q < 0 preferred at 2.5 sigma", "Liao, Liu, Marfatia, PRD 106, 032010 [2202.10622]; the talk",
        test.delta_chi2,
        f"Delta chi^2 = {test.delta_chi2:.2f} ({test.significance:.2f} sigma) at k = 0.157, best q = "
        f"({q * 1e4:.2f} +- {dq * 1e4:.2f}) x 1e-4; with k ~ N(0.162, 0.004): Delta chi^2 = {tk.delta_chi2:.2f} "
        f"({tk.significance:.2f} sigma), k = {bk.best_fit['k']:.4f}",
        "`models/dresden_ii_quenching.py` likelihood: `Fitter(build_model(None)).fit()` vs `fixed={'q': 0}`",
        "Weaker (1.9 vs 2.5 sigma). Our likelihood: Gaussian chi^2 on the released Rx-ON rates, 7 background "
        "nuisances (A + B exp(-CE) + L1/L2/M lines), flux 4.8e13 without capture, k fixed or CONUS+ prior; "
        "2202.10622 used its own background treatment and (k, q) scan (exact settings not verified).",
        RTOL_FIT, "", {"significance_sigma": test.significance, "q_best": q, "q_err": dq,
                       "chi2_best": best.minus2lnL, "kprior_delta_chi2": tk.delta_chi2,
                       "kprior_k": bk.best_fit["k"], "kprior_q": bk.best_fit["q"]}))
    timings["dresden"] = time.perf_counter() - t
    if plots_dir is not None:
        t = time.perf_counter()
        plot_dresden_kq(Path(plots_dir) / "dresden_ii_kq.png", best)
        timings["dresden_kq_plot"] = time.perf_counter() - t
    return rows


def dresden_kq_grid(best, ks, qs):
    """Profile chi^2 (7 backgrounds re-fitted) on a (k, q) grid, k flat (no prior): (len(ks), len(qs))."""
    import cevnsjax as cj
    import dresden_ii_quenching as DQ
    from _common import Fitter

    m = DQ.build_model(None, extra_priors={"k": cj.Uniform(0.10, 0.30)})
    f = Fitter(m, scales=DQ.SCALES)
    chi2 = np.empty((len(ks), len(qs)))
    start = dict(best.best_fit)
    for i, k in enumerate(ks):
        row_start = dict(start)
        for j, q in enumerate(qs):
            r = f.fit(init=row_start, fixed={"k": float(k), "q": float(q)}, hessian=False)
            chi2[i, j] = r.minus2lnL
            row_start = r.best_fit
        start = f.fit(init=start, fixed={"k": float(k), "q": float(qs[len(qs) // 2])}, hessian=False).best_fit
    return chi2


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
    import cicenns_sensitivity as CS

    rows = []
    t = time.perf_counter()
    e = cj.load_preset("cicenns", with_data=False)
    n = float(np.sum(cj.predict(e.defaults, e.prepare()).signal))
    c = dataclasses.replace(e, name="coherent_talk", mass_kg=14.6, source=cj.PionDAR.from_flux(4.7e7 / 3, 19.3))
    nc = float(np.sum(cj.predict(c.defaults, c.prepare()).signal))
    rows.append(_row(
        "cicenns_events", "CICENNS (300 kg CsI, 10.5 m, 2.0e7 /cm^2/s) CEvNS events per year",
        "~2500 / yr (COHERENT 14.6 kg, 19.3 m, 4.7e7: 306 / yr)", "the talk (CICENNS table)", n,
        f"{n:.0f} / yr; COHERENT's configuration with the same response: {nc:.1f} / yr",
        "`cj.predict(load_preset('cicenns'))`; COHERENT: same experiment, 14.6 kg, `PionDAR.from_flux(4.7e7/3, 19.3)`",
        f"CICENNS {100 * (n / 2500 - 1):+.0f} %, COHERENT {100 * (nc / 306 - 1):+.1f} %. The talk's two numbers "
        f"cannot both be matched by one response: their ratio 8.17 is 7 % below the mass x flux ratio "
        f"{(300 / 14.6) * (2.0 / 4.7):.3f} (ours: {n / nc:.3f}).",
        RTOL_DETERMINISTIC, "events / yr", {"coherent_talk_flux": nc}))
    timings["cicenns_events"] = time.perf_counter() - t

    t = time.perf_counter()
    a = types.SimpleNamespace(flux_unc=0.05, qf_unc=0.038, acc_unc=0.03, brn_unc=0.25)
    ex, prep, info = CS.build_experiment(a.brn_unc)
    jm = CS.build(ex, prep, {"signal_scale": cj.Uniform(0.0, 2.0)}, CS.nuisance_priors(a, info))
    sf = CS.fisher(jm).errors["signal_scale"]
    jm0 = CS.build(ex, prep, {"signal_scale": cj.Uniform(0.0, 2.0)}, {})
    s0 = CS.fisher(jm0).errors["signal_scale"]
    rows.append(_row(
        "cicenns_precision", "CICENNS CEvNS cross-section precision (1 yr, Asimov, Fisher)",
        "~6.5 % (today ~16 % measured, 4.8 % SM theory)", "the talk (SM measurements)", 100 * sf,
        f"{100 * sf:.2f} % (statistics + backgrounds only: {100 * s0:.2f} %)",
        "`models/cicenns_sensitivity.py`: `fisher(build(..., {'signal_scale': ...}, nuisance_priors(...)))`",
        "Assumed systematics (the talk states none): flux 5 %, QF 3.8 %, acceptance 3 %, beam neutrons 25 %, "
        "steady-state background scaled from COHERENT 2017 (~6000 events). The flux and QF terms dominate "
        "(4 % flux: 6.8 %); statistics alone give ~3 %.",
        RTOL_DETERMINISTIC, "%", {"stat_only_percent": 100 * s0, "signal_sm": info["signal_sm"],
                                  "steady_state": info["steady_state"]}))
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
        "texono_yields", "Reactor nu-bar yield per fission (TEXONO table): total incl. 238U(n,gamma)",
        "U235 3.4, U238 0.5, Pu239 1.8, Pu241 0.4, 238U(n,g) 1.2 (per fission)", "TEXONO, hep-ex/0605006; the talk",
        rows["total"]["nu_per_fission"], ours,
        "`Reactor(1, 10, fission_fractions='texono').yield_table()`",
        "Identical to the table's rounding (products of its rates x yields); the capture branch is 17 % of the "
        "total and all of it below 1.3 MeV.",
        RTOL_DETERMINISTIC, "nu / fission", {k: v["nu_per_fission"] for k, v in rows.items() if k != "total"})]


def unfolding_toys(problem, n_toys, seed, betas=UNFOLD_BETAS):
    """nu_hat (n_betas, n_toys, m) of seeded toys on the beta grid: the estimator part of
    ``cevnsjax.stats.unfold.run_unfolding`` (same data, seeds and grid; its bias statistics, which need a
    Jacobian per toy and ~1 minute of compilation, are not needed for the bands)."""
    import jax.numpy as jnp
    from cevnsjax.stats import unfold as U

    L = jnp.asarray(U.second_difference_matrix(problem.m))
    toys = jnp.asarray(U.toy_data(problem, n_toys, seed))
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

    nu = unfolding_toys(problem, n_toys, seed + 1, betas)
    bp = U.physical_beta(betas, nu)
    b_phys = float(np.median(bp))
    k = int(np.argmin(np.abs(np.log(betas) - np.log(max(b_phys, betas[0])))))
    if not np.isclose(betas[k], b_phys, rtol=1e-9):
        nu_k = unfolding_toys(problem, n_toys, seed + 1, np.asarray([b_phys]))[0]
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
    nc = unfolding_toys(pc, UNFOLD_TOYS, 1)
    nn = unfolding_toys(pn, UNFOLD_TOYS, 2)
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
    timings["unfold_s3"] = time.perf_counter() - t
    if plots_dir is not None:
        t = time.perf_counter()
        plot_unfolding(Path(plots_dir) / "unfolding.png", res, pc, nc, nn, k20)
        timings["unfolding_plot"] = time.perf_counter() - t
    return rows


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
def compute(data_dir=None, plots_dir=None, only=None) -> dict:
    """Every row of the results table: ``{"rows": [...], "timings_s": {...}, "versions": {...}}``.

    ``data_dir``: the published-data folder (default ``$CEVNSJAX_DATA`` / ``../shared/data``);
    ``plots_dir``: where to write the two PNGs (None: no figures); ``only``: subset of the groups
    ``coherent, dresden, cicenns, reactor, unfolding``.
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
