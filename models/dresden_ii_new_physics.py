"""Light Z' and light scalar constraints from Dresden-II: standard Lindhard QF versus (k, q) marginalised.

Liao, Liu, Marfatia (arXiv:2202.10622; the talk's "Constraints on new physics"): with the standard
Lindhard QF the Dresden-II data mildly prefer new physics; marginalising over the (k, q) of the
modified Lindhard QF changes the constraints qualitatively. Same data, likelihood and background
model as ``dresden_ii_quenching.py`` (Gaussian chi^2 on the Rx-ON rates, 7 background nuisances,
a_M ~ N(1, 0.03)).

Models (universal couplings as in cevnsjax.xsec; REFERENCE.md section 7):

* ``zprime``: light vector, coupling ``g_zprime`` (= sqrt(g_nu g_q)), mass ``m_zprime_MeV``;
  interferes destructively with the SM at small g, so at fixed mass Delta chi^2(g) can have a second
  allowed island (the sign-flipped weak charge).
* ``scalar``: light scalar, ``g_scalar``, ``m_scalar_MeV``; adds incoherently.

QF treatments:

* ``lindhard``: k = 0.157, q = 0 (ModifiedLindhard with q = 0 is the standard Lindhard model).
* ``kq``: k ~ N(0.162, 0.004) (CONUS+, see dresden_ii_quenching.py for the choice; ``--k-prior broad``
  for Uniform(0.14, 0.20)) and q ~ Uniform(-5e-4, 3e-4), profiled (frequentist) or marginalised (NUTS).

Frequentist: profile likelihood in mass slices. At each mass the coupling is scanned on a log grid
(every other parameter re-fitted); Delta chi^2(g) = chi^2(g) - min_g chi^2 at that mass; the 90 % CL
allowed intervals are where Delta chi^2 < 2.71 (ends refined by bisection) and the quoted upper limit is
the largest allowed coupling (for the Z' possibly the top of the sign-flipped island). Bayesian: NUTS with log-uniform priors g in [1e-7, 1e-3] and m in
[0.1, 1000] MeV; 90 % posterior quantile of g in decades of m (prior-dependent: the likelihood is flat
as g -> 0, so these upper limits move with the lower prior bound of g).

    python models/dresden_ii_new_physics.py --num-samples 1000 --num-warmup 500 --num-chains 2 \\
        --seed 0 --out out_dresden_ii_new_physics

Writes summary.json, posterior_<model>_<qf>.nc, profiles.png (Delta chi^2 vs g per mass slice),
limits.png (90 % CL upper limit vs mass, both QF treatments; needs >= 2 masses), posterior_<model>_<qf>.png
(NUTS draws in the (m, g) plane). ``--quick``: one mass slice (10 MeV), 6 grid points per decade, NUTS
only for zprime/lindhard.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import Fitter, Timer, make_parser, posterior_summary, setup, write_json  # noqa: E402
import dresden_ii_quenching as DQ  # noqa: E402

MODELS = {"zprime": ("g_zprime", "m_zprime_MeV"), "scalar": ("g_scalar", "m_scalar_MeV")}
QFS = ("lindhard", "kq")
G_RANGE = (1e-7, 1e-3)
M_RANGE = (0.1, 1000.0)
G_OFF = 1e-12  # coupling used to switch a mediator off in the combined fit model (effect < 1e-20)
CL90 = 2.705543454095404  # chi2.ppf(0.90, 1)


def _np_priors(which=("zprime", "scalar")):
    import cevnsjax as cj

    out = {}
    for w in which:
        g, m = MODELS[w]
        out[g] = cj.LogUniform(G_OFF if len(which) > 1 else G_RANGE[0], G_RANGE[1])
        out[m] = cj.LogUniform(*M_RANGE)
    return out


def build(qf: str, which=("zprime", "scalar"), k_prior: str = "conus_plus"):
    """JointModel: Dresden-II, backgrounds, the mediators in ``which`` and, for ``qf="kq"``, k and q."""
    return DQ.build_model(k_prior if qf == "kq" else None, extra_priors=_np_priors(which), free_q=(qf == "kq"))


def _off(which_on):
    """Fixed values switching off the other mediator."""
    out = {}
    for w, (g, m) in MODELS.items():
        if w != which_on:
            out[g], out[m] = G_OFF, 1000.0
    return out


def scan_mass(fitter, start, model, mass, grid):
    """Profile chi^2 over the coupling grid at fixed mass; returns (chi2 array, fit function)."""
    g, m = MODELS[model]
    off = _off(model)
    cache = {}

    def chi2_at(gv, init):
        r = fitter.fit(init=init, fixed={g: float(gv), m: float(mass), **off}, hessian=False)
        cache[float(gv)] = r
        return r.minus2lnL, r

    chi2 = np.empty(len(grid))
    init = dict(start)
    for i, gv in enumerate(grid):  # small -> large coupling, warm-started
        chi2[i], r = chi2_at(gv, init)
        if r.converged:
            init = r.best_fit
    # free-coupling fit from the best grid point (refines the minimum)
    ib = int(np.argmin(chi2))
    rb = fitter.fit(init={**cache[float(grid[ib])].best_fit}, fixed={m: float(mass), **off}, hessian=False)
    chi2_min = min(chi2.min(), rb.minus2lnL)
    g_best = rb.best_fit[g] if rb.minus2lnL <= chi2.min() else float(grid[ib])
    return chi2, chi2_min, g_best, lambda gv: chi2_at(gv, cache[float(grid[ib])].best_fit)[0]


def limits_from_scan(grid, chi2, chi2_min, g_best, chi2_fn, n_bisect=10):
    """90 % CL allowed intervals in g (Delta chi^2 < 2.71; ends refined by bisection in log g) and the upper limit
    (the largest allowed coupling: the top of the highest interval; for the Z' this can be the top of the
    sign-flipped island above an excluded gap)."""
    # the refined best fit joins the grid, so an allowed interval exists even when the minimum lies
    # between coarse grid points (every grid point then has Delta chi^2 > 2.71)
    grid, chi2 = np.asarray(grid, float), np.asarray(chi2, float)
    if g_best is not None and np.isfinite(g_best) and grid[0] < g_best < grid[-1]:
        k = int(np.searchsorted(grid, g_best))
        grid, chi2 = np.insert(grid, k, g_best), np.insert(chi2, k, chi2_min)
    d = chi2 - chi2_min
    lg = np.log10(grid)
    ok = d < CL90

    def refine(i_in, i_out):
        a, b = lg[i_in], lg[i_out]
        for _ in range(n_bisect):
            c = 0.5 * (a + b)
            if chi2_fn(10 ** c) - chi2_min < CL90:
                a = c
            else:
                b = c
        return float(10 ** (0.5 * (a + b)))

    intervals, i = [], 0
    while i < len(grid):
        if ok[i]:
            j = i
            while j + 1 < len(grid) and ok[j + 1]:
                j += 1
            lo = float(grid[0]) if i == 0 else refine(i, i - 1)
            hi = float(grid[-1]) if j == len(grid) - 1 else refine(j, j + 1)
            intervals.append([lo, hi])
            i = j + 1
        else:
            i += 1
    upper = max((hi for lo, hi in intervals), default=None)
    return intervals, upper


def frequentist(qf, args, masses, per_decade, timings):
    model = build(qf, k_prior=args.k_prior)
    if True:
        fitter = Fitter(model, scales=DQ.SCALES)
        sm_fix = {"g_zprime": G_OFF, "m_zprime_MeV": 1000.0, "g_scalar": G_OFF, "m_scalar_MeV": 1000.0}
        sm = fitter.fit(init=sm_fix, fixed=sm_fix, n_starts=1, seed=args.seed, hessian=False)
    n = int(round(per_decade * np.log10(G_RANGE[1] / G_RANGE[0]))) + 1
    grid = np.geomspace(*G_RANGE, n)
    out = {"sm_chi2": sm.minus2lnL, "sm_fit": sm.best_fit, "grid_g": grid, "models": {}}
    for w in MODELS:
        res = {}
        for mass in masses:
            chi2, cmin, gb, fn = scan_mass(fitter, sm.best_fit, w, mass, grid)
            intervals, upper = limits_from_scan(grid, chi2, cmin, gb, fn)
            res[f"{mass:g}"] = {"m_MeV": mass, "g_best": gb, "chi2_min": cmin,
                                "delta_chi2_sm_vs_best": sm.minus2lnL - cmin,
                                "g_upper_90": upper, "allowed_90": intervals, "delta_chi2": chi2 - cmin}
        out["models"][w] = res
    return out


def bayesian(model_name, qf, args, out, timings, sm_best):
    model = build(qf, which=(model_name,), k_prior=args.k_prior)
    g, m = MODELS[model_name]
    init = {k: v for k, v in sm_best.items() if k in model.priors}
    init.update({g: 1e-6, m: 10.0})
    with Timer() as t:
        res = model.sample(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                           seed=args.seed, progress_bar=False, dense_mass=True, init_values=init,
                           max_tree_depth=5 if args.quick else 8,
                           num_prior_samples=0 if args.quick else None)
    timings[f"nuts_{model_name}_{qf}_s"] = round(t.s, 2)
    nc = out / f"posterior_{model_name}_{qf}.nc"
    res.save(nc)
    G, M = res.posterior[g].ravel(), res.posterior[m].ravel()
    slices = {}
    for lo in 10.0 ** np.arange(np.log10(M_RANGE[0]), np.log10(M_RANGE[1])):
        sel = (M >= lo) & (M < 10 * lo)
        slices[f"{lo:g}-{10 * lo:g} MeV"] = {"n_draws": int(sel.sum()),
                                             "g_q90": float(np.quantile(G[sel], 0.9)) if sel.sum() >= 10 else None}
    s = {"netcdf": nc.name, "posterior": posterior_summary(res), "g_upper_90_by_mass_decade": slices,
         "divergences": res.num_divergences, "converged": bool(res.converged),
         "sampling_time_s": res.attrs["sampling_time_s"], "priors": {k: repr(v) for k, v in model.priors.items()}}
    fig = None
    if not args.no_plots:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.6, 3.6))
        ax = fig.subplots()
        ax.loglog(M, G, ".", ms=2, alpha=0.4)
        ax.set_xlabel(m)
        ax.set_ylabel(g)
        ax.set_title(f"{model_name}, QF {qf}: NUTS draws", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"posterior_{model_name}_{qf}.png", dpi=100)
        s["figure"] = f"posterior_{model_name}_{qf}.png"
    return s


def plot_profiles(path, freq, masses):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, w in zip(axes, MODELS):
        for qf, ls in zip(QFS, ("-", "--")):
            f = freq[qf]
            for j, mass in enumerate(masses):
                d = f["models"][w][f"{mass:g}"]["delta_chi2"]
                ax.semilogx(f["grid_g"], d, ls, color=f"C{j}", label=f"m={mass:g} MeV, {qf}")
        ax.axhline(CL90, color="grey", lw=0.5)
        ax.set_ylim(0, 10)
        ax.set_xlabel(MODELS[w][0])
        ax.set_ylabel(r"$\Delta\chi^2$ (profiled)")
        ax.legend(frameon=False, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_limits(path, freq, masses):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, w in zip(axes, MODELS):
        for qf, ls in zip(QFS, ("-o", "--s")):
            up = [freq[qf]["models"][w][f"{m:g}"]["g_upper_90"] for m in masses]
            ax.loglog(masses, [np.nan if u is None else u for u in up], ls, ms=3, label=f"90% CL, QF {qf}")
        ax.set_xlabel(MODELS[w][1])
        ax.set_ylabel(MODELS[w][0] + " upper limit")
        ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(args):
    out = setup(args, __file__)
    masses = [10.0] if args.quick else [float(x) for x in args.masses.split(",")]
    per_decade = 6 if args.quick else args.per_decade
    timings = {}
    with Timer() as total:
        freq = {}
        for qf in QFS:
            with Timer() as t:
                freq[qf] = frequentist(qf, args, masses, per_decade, timings)
            timings[f"profiles_{qf}_s"] = round(t.s, 2)
        runs = [("zprime", "lindhard")] if args.quick else [(w, q) for w in MODELS for q in QFS]
        bayes = {f"{w}_{q}": bayesian(w, q, args, out, timings, freq[q]["sm_fit"]) for w, q in runs}
        figures = []
        if not args.no_plots:
            plot_profiles(out / "profiles.png", freq, masses)
            figures.append("profiles.png")
            if len(masses) > 1:
                plot_limits(out / "limits.png", freq, masses)
                figures.append("limits.png")
            figures += [b["figure"] for b in bayes.values() if "figure" in b]
    timings["total_s"] = round(total.s, 2)
    table = {qf: {w: {k: {"g_upper_90": v["g_upper_90"], "g_best": v["g_best"],
                          "delta_chi2_sm_vs_best": v["delta_chi2_sm_vs_best"], "allowed_90": v["allowed_90"]}
                      for k, v in freq[qf]["models"][w].items()} for w in MODELS} for qf in QFS}
    summary = {"script": Path(__file__).name,
               "command": " ".join(["python", "models/" + Path(__file__).name] + sys.argv[1:]),
               "settings": vars(args), "masses_MeV": masses, "limits_90cl_profile": table,
               "profile_scans": freq, "nuts": bayes, "nuts_skipped": [] if not args.quick else
               [f"{w}_{q}" for w in MODELS for q in QFS if (w, q) not in runs],
               "figures": figures, "timings": timings,
               "notes": ("Delta chi2 per mass slice relative to the best coupling at that mass; "
                         "delta_chi2_sm_vs_best > 0 means new physics is preferred over the SM at that mass.")}
    write_json(out / "summary.json", summary)
    for qf in QFS:
        for w in MODELS:
            for k, v in table[qf][w].items():
                print(f"[{qf:8s}] {w:6s} m = {k:>6s} MeV: g90 < {v['g_upper_90'] or float('nan'):.3g}  best g {v['g_best']:.3g}  "
                      f"chi2(SM) - chi2(best) = {v['delta_chi2_sm_vs_best']:.2f}")
    print(f"wrote {out / 'summary.json'} in {total.s:.1f} s")
    return summary


if __name__ == "__main__":
    p = make_parser(__doc__, num_samples=1000, num_warmup=500, num_chains=2)
    p.add_argument("--k-prior", choices=sorted(DQ.K_PRIORS), default="conus_plus")
    p.add_argument("--masses", default="0.1,1,3,10,30,100", help="mass slices in MeV (comma-separated)")
    p.add_argument("--per-decade", type=int, default=16, help="coupling grid points per decade (profile scans)")
    main(p.parse_args())
