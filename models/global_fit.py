"""Global CEvNS fit: Dresden-II + COHERENT CsI 2017 + CsI 2021 + LAr 2020 in one JointModel.

The likelihood is :func:`cevnsjax.analyses.global_fit.global_model` (its docstring lists every prior);
this script fits it (``JointModel.fit``), profiles sin^2 theta_W and the CsI radius (``JointModel.profile``)
and samples it with NUTS (:func:`cevnsjax.stats.infer.run_nuts`).

Shared physics (flat priors, common to every data set): ``sin2_theta_w`` U(0.1, 0.4); vector NSI
``eps_u_ee``, ``eps_d_ee`` U(-0.6, 0.6); a light Z' (``g_zprime`` LogU(1e-7, 1e-3), ``m_zprime_MeV``
LogU(1, 1e4)) and scalar (``g_scalar``, ``m_scalar_MeV``, same ranges). The CsI neutron radius
``csi:delta_rn_fm`` U(-3, 4) fm is shared by the two CsI data sets ONLY (the Ge and Ar radii stay at
their form-factor defaults): it is tied to their local ``delta_rn_fm`` sites (:class:`GlobalModel`).
The CsI proton rms radii are the muonic-atom values 4.804 / 4.749 fm (as in models/coherent_csi.py
``rn``), so R_n(CsI) = 4.83 fm (Klein-Nystrand default, mean of Cs and I) + ``csi:delta_rn_fm``.

Every data set keeps its own nuisances, named ``<experiment>:<name>``:

* Dresden-II (models/dresden_ii_quenching.py): modified Lindhard QF with k ~ N(0.162, 0.004) (CONUS+)
  and q ~ U(-5e-4, 3e-4) -- both marginalised (NUTS) / profiled (fits) -- and the 7 background
  parameters (flat, a_M ~ N(1, 0.03)); Gaussian chi^2 on the released daily rates.
* CsI 2017 / 2021 (models/coherent_csi.py ``nuisance_priors(..., "rn")``): flux 10 %, QF or light yield,
  acceptance, BRN/NIN and steady-state normalisations; Poisson on PE x time.
* LAr 2020 (release LArParametersAnlA.yaml): flux_norm N(1, 0.10), prompt BRN N(1, 160/497),
  delayed BRN N(1, 33/33) truncated at 0, steady state N(1, 25/3152) (as docs/make_results.py); Poisson on E_ee x t_trig.

NOTE: the CsI 2021 full data set CONTAINS the 2017 data, so combining both (as the issue asks) counts
those events twice; ``--datasets dresden_ii,coherent_csi_2021,coherent_lar_2020`` avoids it.

    python models/global_fit.py --physics sin2,rn --num-samples 500 --num-warmup 500 --num-chains 2 --out out_global

``--physics`` picks the free shared parameters (comma list of sin2, rn, nsi, zprime, scalar; the others
stay at the SM); ``--quick`` (CI): 5-point profiles, 2-D NSI profile skipped, NUTS 100 + 100 draws, one
chain, max_tree_depth 6. Writes to --out: summary.json (MLE, Hessian errors, profiles, NUTS summary
with r_hat / ESS / ESS per second, divergences, timings) and posterior.nc (ArviZ InferenceData).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import cevnsjax as cj
from cevnsjax.analyses import global_fit as G
from cevnsjax.reporting import Timer, fit_summary, posterior_summary, write_json
from cevnsjax.stats.infer import run_nuts


def profiles(gm, best, n_points: int, nsi: bool) -> dict:
    """Profiles of sin^2 theta_W and the CsI radius (+-3 Hessian errors, inside the prior) and, with ``nsi``,
    the 2-D (eps_u_ee, eps_d_ee) profile on an 11 x 11 grid."""
    out = {}
    for p in [p for p in ("sin2_theta_w", G.radius_site(gm)) if p in gm.names]:
        lo, hi = gm.bounds()[p]
        v, e = best.best_fit[p], best.errors.get(p, np.nan)
        w = 3.0 * e if np.isfinite(e) and e > 0 else 0.2 * (hi - lo)
        g = np.linspace(max(lo, v - w), min(hi, v + w), n_points)
        r = gm.profile(p, g, best=best)
        out[p] = {"grid": g, "delta_chi2": r.delta_chi2, "interval68": list(r.interval(0.6827)),
                  "interval90": list(r.interval(0.90))}
    if nsi and "eps_u_ee" in gm.names:
        g = np.linspace(-0.5, 0.5, 11)
        pts = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        r = gm.profile(("eps_u_ee", "eps_d_ee"), pts, best=best)
        d = r.delta_chi2.reshape(11, 11)
        out["nsi"] = {"grid": g, "delta_chi2": d, "allowed_fraction_90cl": float(np.mean(d < 4.605))}
    return out


def nuts(gm, best, num_samples, num_warmup, num_chains, seed, max_tree_depth=10, chain_method=None):
    """NUTS on the global model (dense mass, started at the best fit, q through its link). ``chain_method``:
    default sequential for several chains; "parallel" runs one chain per device (on a CPU set
    XLA_FLAGS=--xla_force_host_platform_device_count=N before starting Python)."""
    return run_nuts(G.sampling_model(gm), obs=gm.observed(), num_samples=num_samples, num_warmup=num_warmup,
                    num_chains=num_chains, seed=seed, progress_bar=False, init_values=G.sampling_init(gm, best.best_fit),
                    dense_mass=True, max_tree_depth=max_tree_depth,
                    chain_method=chain_method or ("sequential" if num_chains > 1 else "vectorized"), num_prior_samples=0,
                    posterior_predictive=False)


def main(args):
    import matplotlib

    matplotlib.use("Agg")
    cj.enable_x64()
    out = Path(args.out or "out_global_fit")
    out.mkdir(parents=True, exist_ok=True)
    datasets = tuple(s for s in args.datasets.split(",") if s)
    physics = tuple(s for s in args.physics.split(",") if s)
    summary = {"script": "global_fit", "datasets": datasets, "physics": physics, "settings": {
        k: getattr(args, k) for k in ("num_samples", "num_warmup", "num_chains", "seed", "quick")}, "timing_s": {}}
    with Timer() as t:
        gm = G.global_model(datasets, physics)
    summary["timing_s"]["build"] = t.s
    summary["n_parameters"] = len(gm.names)
    summary["parameters"] = gm.names
    with Timer() as t:
        best = gm.fit()
    summary["timing_s"]["mle"] = t.s
    summary["mle"] = fit_summary(best)
    with Timer() as t:
        prof = profiles(gm, best, 5 if args.quick else 21, nsi=not args.quick)
    summary["timing_s"]["profiles"] = t.s
    summary["profiles"] = prof
    rs = G.radius_site(gm)
    if rs is not None:
        rn0 = G.csi_default_radius(gm)
        summary["R_n_csi_default_fm"] = rn0
        if rs in prof:
            summary["R_n_csi_fm"] = {"best": rn0 + best.best_fit[rs],
                                     "interval68": [rn0 + x for x in prof[rs]["interval68"]]}
    if args.num_samples > 0:
        depth = 6 if args.quick else 10
        ns, nw = (min(args.num_samples, 100), min(args.num_warmup, 100)) if args.quick else (args.num_samples, args.num_warmup)
        r = nuts(gm, best, ns, nw, 1 if args.quick else args.num_chains, args.seed, depth, args.chain_method)
        post = posterior_summary(r, gm.names)
        ts = r.attrs.get("sampling_time_s")
        ess_min = min(v.get("ess_bulk", np.nan) for v in post.values())
        rhat_max = max(v.get("r_hat", np.nan) for v in post.values())
        summary["nuts"] = {"summary": post, "divergences": int(r.num_divergences), "sampling_time_s": ts,
                           "r_hat_max": rhat_max, "ess_bulk_min": ess_min,
                           "ess_bulk_min_per_s": ess_min / ts if ts else None,
                           "converged": bool(rhat_max < 1.01 and r.num_divergences == 0)}
        r.save(out / "posterior.nc")
    write_json(out / "summary.json", summary)
    _print(summary, best)
    return summary


def _print(s, best):
    print(f"global fit of {', '.join(s['datasets'])}: {s['n_parameters']} parameters, -2lnL = {best.minus2lnL:.2f}"
          f" (converged: {best.converged})")
    for p in ("sin2_theta_w", G.RN_SITE, "eps_u_ee", "eps_d_ee"):
        if p in best.best_fit:
            print(f"  {p} = {best.best_fit[p]:.4f} +- {best.errors.get(p, float('nan')):.4f}")
    if "nuts" in s:
        n = s["nuts"]
        print(f"  NUTS: r_hat max {n['r_hat_max']:.4f}, divergences {n['divergences']}, ESS min {n['ess_bulk_min']:.0f}"
              f" ({n['ess_bulk_min_per_s']:.2f}/s), {n['sampling_time_s']:.0f} s")


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=500, help="NUTS draws per chain, 0: no NUTS (default 500)")
    p.add_argument("--num-warmup", type=int, default=500, help="NUTS warmup steps per chain (default 500)")
    p.add_argument("--num-chains", type=int, default=2, help="NUTS chains, run one after the other (default 2)")
    p.add_argument("--seed", type=int, default=0, help="NUTS seed (default 0)")
    p.add_argument("--chain-method", choices=("sequential", "parallel", "vectorized"), default=None,
                   help="how NUTS runs several chains (default sequential; parallel needs one device per chain, on a "
                        "CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    p.add_argument("--out", default=None, help="output folder (default out_global_fit)")
    p.add_argument("--quick", action="store_true", help="CI settings (see the module docstring)")
    p.add_argument("--no-plots", action="store_true", help="accepted for symmetry with the other scripts (no plots)")
    p.add_argument("--datasets", default=",".join(G.DATASETS), help="comma list of data sets (default: all four)")
    p.add_argument("--physics", default="sin2,rn",
                   help="free shared physics: comma list of " + ", ".join(G.PHYSICS) + " (default sin2,rn)")
    return p


if __name__ == "__main__":
    main(make_parser().parse_args())
