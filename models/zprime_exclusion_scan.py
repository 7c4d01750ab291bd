"""Light Z' and scalar exclusion curves on Dresden-II and COHERENT CsI 2017 from profiled grid scans.

For each experiment and mediator, Delta chi^2 over a (mass, coupling) plane (log grids) with the
nuisances profiled at every point by the scan engine (``JointModel.scan``: chunked, vmapped,
device-sharded, resumable), then the 90% CL exclusion curve (Delta chi^2 = 2.71 per mass, 1 dof:
a raster scan in mass). Nuisances:

* Dresden-II: the published background model (A, B, C, h_L1, c_L1, w_L1, a_M with its N(1, 0.03)
  constraint; DRESDEN_II.md §3) with the preset's iron-filter quenching (the QF dependence of these
  limits is the subject of ``dresden_ii_new_physics.py``).
* COHERENT CsI 2017: flux normalisation (10%, Gaussian pull) and the two background templates
  (steady state from anti-coincidence, smoothed to the product of its PE and time marginals as in
  ``coherent_csi.py``, +-1/sqrt(N_AC); prompt neutrons +-25%).

``python models/zprime_exclusion_scan.py --out DIR [--quick] [--n 60]``; writes summary.json (limits
at a few masses), one netCDF per scan and exclusion.png. The NUTS options of the common parser are
accepted for uniformity but unused (a scan, not a posterior).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cevnsjax.reporting import Timer, jsonable, write_json

MEDIATORS = {"zprime": ("m_zprime_MeV", "g_zprime"), "scalar": ("m_scalar_MeV", "g_scalar")}
DRESDEN_BKG = {"bkg.dresden_ii.A": ("uniform", 0.0, 100.0), "bkg.dresden_ii.B": ("uniform", 0.0, 1000.0),
               "bkg.dresden_ii.C": ("uniform", 0.1, 20.0), "bkg.dresden_ii.h_L1": ("uniform", 0.0, 150.0),
               "bkg.dresden_ii.c_L1": ("uniform", 1.2, 1.4), "bkg.dresden_ii.w_L1": ("uniform", 0.02, 0.2),
               "bkg.dresden_ii.a_M": ("normal", 1.0, 0.03)}
CSI_NUIS = {"flux_norm": ("truncated_normal", 1.0, 0.10, 0.0, 3.0),
            "bkg.steady_state.scale": ("truncated_normal", 1.0, 0.05, 0.0, 3.0),
            "bkg.prompt_neutrons.scale": ("truncated_normal", 1.0, 0.25, 0.0, 3.0)}
COUPLING_RANGE = {"dresden_ii": {"zprime": (1e-7, 1e-3), "scalar": (1e-7, 1e-3)},
                  "coherent_csi_2017": {"zprime": (1e-6, 1e-2), "scalar": (1e-6, 1e-2)}}


def build(name):
    import cevnsjax as cj
    from cevnsjax.stats.model import Analysis, JointModel

    if name == "dresden_ii":
        ex, nuis = cj.load_preset(name), DRESDEN_BKG
    else:  # the steady-state template smoothed as in coherent_csi.py (raw AC cells hold ~2 counts)
        from cevnsjax.analyses.coherent_csi import load_experiment

        ex, n_ac = load_experiment(name)
        nuis = dict(CSI_NUIS, **{"bkg.steady_state.scale": ("truncated_normal", 1.0, 1.0 / np.sqrt(n_ac), 0.0, 3.0)})
    model = JointModel([Analysis(ex, nuis)])
    return model, nuis


def scan_one(name, mediator, n, out: Path, quick: bool):
    from cevnsjax.stats.scan import exclusion_curve

    model, nuis = build(name)
    m_name, g_name = MEDIATORS[mediator]
    glo, ghi = COUPLING_RANGE[name][mediator]
    grid = [f"{m_name}=log:0.1:1000:{n}", f"{g_name}=log:{glo}:{ghi}:{n}"]
    # every nuisance profiled at each grid point (JointModel.scan's default)
    res = model.scan(grid, chunk_size=1024, out_dir=out / f"scan_{name}_{mediator}", progress=False,
                     fingerprint=f"{name}-{mediator}-{n}-v1")
    masses, lim, open_top = exclusion_curve(res, mass=m_name, coupling=g_name, level="90%", dof=1)
    return res, masses, lim, open_top



# -------------------------------------------------------------------------------------- command line
def make_parser(doc, *, num_samples=1000, num_warmup=500, num_chains=2):
    """numpyro-examples style options: --num-samples/--num-warmup/--num-chains/--seed/--out/--quick/--no-plots."""
    import argparse

    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0], epilog=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=num_samples, help=f"NUTS draws per chain (default {num_samples})")
    p.add_argument("--num-warmup", type=int, default=num_warmup, help=f"NUTS warmup steps per chain (default {num_warmup})")
    p.add_argument("--num-chains", type=int, default=num_chains, help=f"NUTS chains (default {num_chains})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, help="output folder (default out_<script name>)")
    p.add_argument("--quick", action="store_true", help="smaller grids and fewer fit starts (CI smoke test)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    return p


def setup(args, script):
    """float64, matplotlib Agg, checked sampler counts; creates and returns the output folder."""
    import matplotlib

    import cevnsjax as cj

    matplotlib.use("Agg")
    cj.enable_x64()
    for name in ("num_samples", "num_chains"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_warmup < 0:
        raise SystemExit(f"--num-warmup must be >= 0, got {args.num_warmup}")
    out = Path(args.out or f"out_{Path(script).stem}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(args):
    out = setup(args, "zprime_exclusion_scan")
    n = min(args.n, 12) if args.quick else args.n
    summary, curves = {"grid_points_per_axis": n, "cl": "90% (Delta chi^2 = 2.71, 1 dof)"}, {}
    for name in ("dresden_ii", "coherent_csi_2017"):
        for mediator in MEDIATORS:
            with Timer() as t:
                res, masses, lim, open_top = scan_one(name, mediator, n, out, args.quick)
            curves[(name, mediator)] = (masses, lim)
            pick = {f"{m:.3g}": (None if not np.isfinite(l) else float(l)) for m, l in zip(masses, lim)}
            summary[f"{name}_{mediator}"] = {
                "limit_at_mass_MeV": pick, "open_top_masses": masses[open_top].tolist(),
                "best_fit": res.best_fit(), "points": int(np.size(res.chi2)), "seconds": t.s,
                "converged_fraction_dchi2_lt_100": float(np.mean(res.converged[res.delta_chi2 < 100])),
            }
            print(f"{name} {mediator}: {np.size(res.chi2)} points in {t.s:.1f} s", flush=True)
    if not args.no_plots:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.5))
        for (name, mediator), (m, l) in curves.items():
            ax.loglog(m, l, label=f"{name}, {'Z′' if mediator == 'zprime' else 'scalar'}",
                      ls="-" if mediator == "zprime" else "--")
        ax.set_xlabel("mediator mass [MeV]")
        ax.set_ylabel("coupling g (90% CL upper limit)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(out / "exclusion.png", dpi=120)
    write_json(out / "summary.json", jsonable(summary))


if __name__ == "__main__":
    p = make_parser(__doc__)
    p.add_argument("--n", type=int, default=60, help="grid points per axis (default 60)")
    main(p.parse_args())
