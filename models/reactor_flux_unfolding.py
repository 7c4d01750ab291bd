"""Unfold the reactor antineutrino flux below the IBD threshold from a CEvNS recoil spectrum.

Liao, Liu, Marfatia [arXiv:2302.10460]: a NUCLEUS-like Ge calorimeter at the Chooz Very-Near-Site,
Tikhonov unfolding with a beta scan and toy bands, compared with a NumPyro model (flux-bin
amplitudes, Gaussian smoothness prior with a sampled strength) on the same pseudo-data.

    python models/reactor_flux_unfolding.py --scenario 1 --num-samples 500 --num-warmup 500 \
        --num-chains 1 --seed 0 --out out_unfold

Writes to --out: summary.json, unfolding.npz (UnfoldingResult), flux.csv (true, Tikhonov with toy
bands, posterior median with 68% bands), beta_scan.csv (variance, bias), flux.png and beta_scan.png.
Needs the published-data folder ($CEVNSJAX_DATA, default ../shared/data) for the reactor flux below 2 MeV.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--num-samples", type=int, default=500)
    ap.add_argument("--num-warmup", type=int, default=500)
    ap.add_argument("--num-chains", type=int, default=1)
    ap.add_argument("--num-toys", type=int, default=1000)
    ap.add_argument("--num-betas", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out_reactor_flux_unfolding")
    a = ap.parse_args(argv)

    import cevnsjax as cj
    from cevnsjax.io.location import data_dir
    from cevnsjax.reporting import write_json
    from cevnsjax.stats import unfold as U

    cj.enable_x64()
    dd = data_dir()
    if dd is None:
        print("error: the published-data folder was not found (set $CEVNSJAX_DATA, default ../shared/data); "
              "the reactor flux below 2 MeV and the 239U/239Np capture spectra are read from it", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    prob = U.build_problem(a.scenario, data_dir=dd)
    res = U.run_unfolding(a.scenario, problem=prob, n_toys=a.num_toys, n_betas=a.num_betas, seed=a.seed)
    res.save(out / "unfolding.npz")
    obs = U.toy_data(prob, 1, a.seed)[0]  # the same observed pseudo-data as run_unfolding

    import jax
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(NUTS(U.bayesian_model), num_warmup=a.num_warmup, num_samples=a.num_samples,
                num_chains=a.num_chains, progress_bar=False, chain_method="sequential")
    mcmc.run(jax.random.PRNGKey(a.seed), prob.R, prob.h, prob.b, n=obs)
    post = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    q = np.percentile(post["nu"], [16, 50, 84], axis=0)

    summary = res.summary()
    summary["bayes"] = {"nu_median": q[1].tolist(), "nu_16": q[0].tolist(), "nu_84": q[2].tolist(),
                        "beta_equiv_median": float(np.median(post["beta_equiv"])),
                        "num_samples": a.num_samples, "num_warmup": a.num_warmup, "num_chains": a.num_chains}
    write_json(out / "summary.json", summary)
    e = prob.nu_edges_MeV
    np.savetxt(out / "flux.csv", np.column_stack([e[:-1], e[1:], prob.nu_true, res.nu_hat, res.band68.T, res.band95.T, q.T]),
               delimiter=",", comments="",
               header="E_lo_MeV,E_hi_MeV,true,tikhonov,toy16,toy84,toy2.5,toy97.5,bayes16,bayes50,bayes84")
    s = res.scan
    np.savetxt(out / "beta_scan.csv", np.column_stack([s.betas, s.variance, s.variance_toys, s.bias_B, s.bias_B_mean,
                                                       s.bias_sq, s.positive_fraction]), delimiter=",",
               header="beta,variance,variance_toys,B_asimov,B_mean_toys,bias_sq,positive_fraction", comments="")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = 0.5 * (e[:-1] + e[1:])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.stairs(prob.nu_true, e, color="k", label="true (with 238U capture)")
    ax.fill_between(c, *res.band95, alpha=0.2, color="C0", label=f"Tikhonov 95% (beta={res.beta:.3g})")
    ax.fill_between(c, *res.band68, alpha=0.4, color="C0", label="Tikhonov 68%")
    ax.plot(c, res.nu_hat, "o", color="C0")
    ax.errorbar(c + 0.01, q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="s", color="C1", label="NumPyro 68%")
    ax.set(xlabel="E_nu [MeV]", ylabel="nu-bar / (MeV fission)", title=prob.name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "flux.png", dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(s.betas, s.variance, label="variance tr U")
    ax.loglog(s.betas, s.bias_B_mean, label="mean bias B (toys)")
    ax.axhline(prob.m, ls=":", color="gray", label="m")
    ax.axvline(res.beta_physical, ls="--", color="C2", label="physical beta")
    ax.set(xlabel="beta", title=prob.name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "beta_scan.png", dpi=120)
    print(json.dumps({k: summary[k] for k in ("scenario", "beta", "beta_bias", "upper95_over_true")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
