"""Gradient-based detector design: the threshold and beam-window exposure that minimise the CEvNS cross-section error.

Setting: CsI[Na] at CSNS as in the ``cicenns`` preset (300 kg, 10.5 m, 1 year: the fixed cost, a
mass x time budget of 300 kg yr). Two continuous design variables:

* the analysis threshold theta [PE], entering through a smooth efficiency turn-on in the observable,
  eps(PE) = a sigmoid((PE - theta)/w) with w = 1 PE (a = 0.6655, the COHERENT 2017 plateau);
* the arrival-time window tau [us] after each beam pulse: the beam-window exposure
  (mass x time x tau x 25 Hz) that the fixed budget buys. A longer window collects more of the
  delayed nu_e / anti-nu_mu signal (tau_mu = 2.2 us; arrival-time PDFs of the COHERENT 2017 release)
  but steady-state background grows linearly in tau.

Objective: the Fisher-matrix error of the signal strength (cross-section normalisation) with
nuisances -- flux normalisation N(1, 5 %), steady-state background normalisation
N(1, 1/sqrt(B)) (measured in anti-coincidence windows of equal length), and the threshold position
(energy-scale / turn-on calibration) N(0, 0.5 PE). sigma(theta, tau) is differentiated by JAX
through the Fisher matrix (which itself contains d mu / d theta) and minimised with ``cevnsjax.minimize`` in
(theta, log tau); a brute-force grid scan checks the optimum. The threshold is bounded to >= 5 PE, the hardware
floor of the COHERENT CsI[Na] acceptance: with this background the optimum threshold sits AT that
floor (the CsI signal rises faster towards low PE than the assumed noise), while the window has an
interior optimum (~5.5 us).

Assumed background (illustrative; stated here, not measured): per PE per us of window and per
300 kg yr, b(PE) = b0 (1 + A exp(-PE / lambda)) with b0 = 20 (the ~6000 steady-state events in
0-60 PE and 6 us assumed in cicenns_sensitivity.py) and a low-energy noise component A = 30,
lambda = 2.5 PE (PMT dark-count / afterglow pile-up, rising steeply below ~8 PE).
The signal PE spectrum (per flux component, no efficiency) comes from cevnsjax.predict once; the
design variables act after it, so each objective evaluation is cheap.

    python models/detector_design.py --out out_design [--quick]

Writes summary.json (optimum, scan minimum, gradient at the optimum) and design.png.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cevnsjax.reporting import Timer, write_json

PLATEAU = 0.6655
WIDTH_PE = 1.0
BKG = {"b0_per_PE_per_us": 20.0, "A": 30.0, "lambda_PE": 2.5}
PRIORS = {"flux_norm": 0.05, "threshold_shift_PE": 0.5}


def signal_spectra():
    """(PE bin edges, prompt and delayed CEvNS counts per 1-PE bin without efficiency, arrival-time CDFs)."""
    import cevnsjax as cj
    from cevnsjax.detector.response import ArrivalTimePDF  # noqa: F401  (documented type of the PDFs)
    from cevnsjax.experiment import RecoilGrid

    e = cj.load_preset("cicenns", with_data=False)
    edges = np.arange(0.0, 61.0, 1.0)
    obs = dataclasses.replace(e.observable, edges=tuple(edges), time_edges_us=None, time_pdfs=())
    e = dataclasses.replace(e, observable=obs, recoil_grid=RecoilGrid(1.0, 50.0, 40, 2),
                            defaults=e.defaults.replace(efficiency=None, backgrounds=()))
    p = cj.predict(e.defaults, e.prepare())
    fl = np.asarray(p.signal_by_flavour)  # rows nu_e, nu_mu, nu_tau, anti-e, anti-mu, anti-tau
    prompt, delayed = fl[1], fl[0] + fl[4]
    from cevnsjax.io.location import data_dir
    from cevnsjax.io.releases.coherent_csi_2017 import load_coherent_csi_2017

    d = load_coherent_csi_2017(data_dir() / "coherent_csi_2017")
    t = np.asarray(d.t_edges_us, float)
    cdf = lambda pdf: np.concatenate([[0.0], np.cumsum(pdf / np.sum(pdf))])  # noqa: E731
    return edges, prompt, delayed, t, cdf(np.asarray(d.arrival_pdf_prompt_nu)), cdf(np.asarray(d.arrival_pdf_delayed_nu))


def make_objective(edges, prompt, delayed, t_edges, cdf_p, cdf_d):
    """sigma(signal strength)(theta [PE], log tau [log us]) as a JAX function."""
    import jax
    import jax.numpy as jnp

    c = jnp.asarray(0.5 * (edges[1:] + edges[:-1]))
    w = jnp.asarray(np.diff(edges))
    prompt, delayed = jnp.asarray(prompt), jnp.asarray(delayed)
    t_edges, cdf_p, cdf_d = map(jnp.asarray, (t_edges, cdf_p, cdf_d))
    b_shape = BKG["b0_per_PE_per_us"] * (1.0 + BKG["A"] * jnp.exp(-c / BKG["lambda_PE"])) * w

    def expected(nu, theta, tau):
        """mu, s_flux, b_scale, threshold shift -> (signal, background) per PE bin."""
        mu, fn, bs, dth = nu
        eff = PLATEAU * jax.nn.sigmoid((c - theta - dth) / WIDTH_PE)
        fp = jnp.interp(tau, t_edges, cdf_p)
        fd = jnp.interp(tau, t_edges, cdf_d)
        s = mu * fn * eff * (prompt * fp + delayed * fd)
        b = bs * eff * b_shape * tau
        return s, b

    def sigma(x):
        theta, log_tau = x[0], x[1]
        return sigma_at(theta, log_tau)

    def sigma_at(theta, log_tau):
        tau = jnp.exp(log_tau)
        nu0 = jnp.array([1.0, 1.0, 1.0, 0.0])
        tot = lambda nu: jnp.sum(jnp.stack(expected(nu, theta, tau)), 0)  # noqa: E731
        J = jax.jacfwd(tot)(nu0)  # (bins, 4)
        m = tot(nu0)
        F = J.T @ (J / jnp.maximum(m, 1e-12)[:, None])
        _, b = expected(nu0, theta, tau)
        prior = jnp.array([0.0, PRIORS["flux_norm"] ** -2, jnp.sum(b), PRIORS["threshold_shift_PE"] ** -2])
        F = F + jnp.diag(prior)
        return jnp.sqrt(jnp.linalg.inv(F)[0, 0])

    return sigma, expected


THETA_MIN_PE = 5.0  # hardware floor: the COHERENT CsI[Na] acceptance H(PE) is 0 below 5 PE


THETA_MAX_PE = 20.0  # upper end of the design range (and of the check scan)


def optimise(sigma, theta0, log_tau0):
    """Minimise sigma(theta, log tau) with ``cevnsjax.minimize`` (threshold bounded to [THETA_MIN_PE,
    THETA_MAX_PE]); returns (theta, log tau), sigma there and d sigma / d (theta, log tau) there."""
    import jax
    import jax.numpy as jnp

    import cevnsjax as cj

    f = lambda p: sigma(jnp.stack([p["threshold_PE"], p["log_window_us"]]))  # noqa: E731
    res = cj.minimize(f, {"threshold_PE": float(theta0), "log_window_us": float(log_tau0)},
                      bounds={"threshold_PE": (THETA_MIN_PE, THETA_MAX_PE)})
    x = np.array([res.best_fit["threshold_PE"], res.best_fit["log_window_us"]], float)
    g = np.asarray(jax.grad(sigma)(jnp.asarray(x)))
    return x, float(sigma(jnp.asarray(x))), g



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


def main(a):
    out = setup(a, __file__)
    import jax
    import jax.numpy as jnp

    summary = {"script": "detector_design", "assumptions": {"budget_kg_yr": 300.0, "plateau": PLATEAU,
                                                             "turn_on_width_PE": WIDTH_PE, "background": BKG,
                                                             "priors": PRIORS}, "timing_s": {}}
    with Timer() as t:
        edges, prompt, delayed, te, cp, cd = signal_spectra()
    summary["timing_s"]["spectra"] = t.s
    sigma, expected = make_objective(edges, prompt, delayed, te, cp, cd)
    start = (7.0, np.log(3.0))  # threshold [PE], log(window [us])
    with Timer() as t:
        x, v, g = optimise(sigma, *start)

    summary["timing_s"]["optimise"] = t.s
    with Timer() as t:
        nt, nu = (31, 25) if a.quick else (91, 71)
        th = np.linspace(THETA_MIN_PE, THETA_MAX_PE, nt)
        lt = np.linspace(np.log(0.5), np.log(12.0), nu)
        TH, LT = np.meshgrid(th, lt, indexing="ij")
        S = np.asarray(jax.jit(jax.vmap(sigma))(jnp.stack([TH.ravel(), LT.ravel()], -1))).reshape(TH.shape)
        i, j = np.unravel_index(np.argmin(S), S.shape)
    summary["timing_s"]["scan"] = t.s
    s_opt, b_opt = (float(np.sum(q)) for q in expected(jnp.array([1.0, 1.0, 1.0, 0.0]), x[0], np.exp(x[1])))
    ref = float(sigma(jnp.array([10.85, np.log(6.0)])))  # the cicenns preset's choice: x0 = 10.85 PE, 6 us
    summary["optimum"] = {"threshold_PE": float(x[0]), "window_us": float(np.exp(x[1])), "sigma_signal_strength": v,
                          "gradient_at_optimum": g,
                          "threshold_at_floor": bool(x[0] - THETA_MIN_PE < 0.05), "threshold_floor_PE": THETA_MIN_PE,
                          "signal_events": s_opt, "background_events": b_opt}
    summary["scan"] = {"threshold_PE": float(th[i]), "window_us": float(np.exp(lt[j])), "sigma_signal_strength": float(S[i, j]),
                       "grid": [nt, nu], "threshold_step_PE": float(th[1] - th[0]),
                       "log_window_step": float(lt[1] - lt[0])}
    summary["agreement"] = {"sigma_rel_diff": float(v / S[i, j] - 1.0),
                            "threshold_diff_PE": float(x[0] - th[i]), "window_ratio": float(np.exp(x[1] - lt[j]))}
    summary["reference_design"] = {"threshold_PE": 10.85, "window_us": 6.0, "sigma_signal_strength": ref}
    write_json(out / "summary.json", summary)
    if not a.no_plots:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.4, 3.4))
        cs = ax.contourf(TH, np.exp(LT), 100 * S, levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax, label=r"$\sigma$(signal strength) [%]")
        ax.plot(start[0], np.exp(start[1]), "wo", ms=4, label="start")
        ax.plot(x[0], np.exp(x[1]), "r*", ms=10, label="gradient optimum")
        ax.plot(th[i], np.exp(lt[j]), "wx", label="scan minimum")
        ax.set_yscale("log")
        ax.set_xlabel("threshold [PE]")
        ax.set_ylabel("time window [us]")
        ax.legend(fontsize=6, frameon=False)
        fig.tight_layout()
        fig.savefig(out / "design.png", dpi=90)
        plt.close(fig)
    print(f"optimum: threshold {x[0]:.2f} PE, window {np.exp(x[1]):.2f} us, sigma {100 * v:.3f} % "
          f"(scan: {th[i]:.2f} PE, {np.exp(lt[j]):.2f} us, {100 * S[i, j]:.3f} %; preset design {100 * ref:.3f} %)")
    return summary


if __name__ == "__main__":
    main(make_parser(__doc__, num_samples=1, num_warmup=0, num_chains=1).parse_args())
