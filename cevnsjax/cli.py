"""The ``cevnsjax`` command: ``--version``, ``demo`` (later issues add predict, fit, scan, unfold)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from cevnsjax import __version__

    p = argparse.ArgumentParser(prog="cevnsjax", description="Differentiable CEvNS rates and inference in JAX")
    p.add_argument("--version", action="version", version=f"cevnsjax {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="SM spectra (CsI, Ge, Ar; reactor and pion DAR) and a NUTS fit of a simulated reactor experiment")
    d.add_argument("--out", required=True, help="output folder (created if missing)")
    d.add_argument("--points", type=int, default=200, help="recoil-energy points per spectrum (default 200)")
    d.add_argument("--num-samples", type=int, default=750)
    d.add_argument("--num-warmup", type=int, default=500)
    d.add_argument("--num-chains", type=int, default=4)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)

    e = sub.add_parser("experiments", help="list the experiment presets")
    e.set_defaults(func=_cmd_experiments)

    pr = sub.add_parser("predict", help="expected counts per observable bin for a spec file or a preset")
    pr.add_argument("spec", help="TOML specification file or preset name (see `cevnsjax experiments`)")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pr.set_defaults(func=_cmd_predict)

    f = sub.add_parser("fit", help="maximum-likelihood fit or NUTS posterior of a spec or preset with data")
    f.add_argument("spec", help="TOML specification file or preset name")
    f.add_argument("--out", required=True, help="output folder")
    f.add_argument("--method", choices=("nuts", "mle"), default="nuts")
    f.add_argument("--prior", action="append", default=[], metavar="NAME=KIND:A:B",
                   help="free parameter with its prior, e.g. q=uniform:-4e-4:2e-4 (repeatable; adds to [fit.priors])")
    f.add_argument("--num-samples", type=int, default=1000)
    f.add_argument("--num-warmup", type=int, default=500)
    f.add_argument("--num-chains", type=int, default=4)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--asimov", action="store_true", help="fit Asimov data (the default prediction) instead of the data")
    f.set_defaults(func=_cmd_fit)

    s = sub.add_parser("scan", help="Delta chi^2 over a grid of 1-3 parameters (chunked, sharded, resumable)")
    s.add_argument("spec", help="TOML specification file or preset name")
    s.add_argument("--param", action="append", required=True, metavar="NAME=lin|log:START:STOP:N",
                   help="grid axis, e.g. g_zprime=log:1e-7:1e-4:100 (1-3 times)")
    s.add_argument("--profile", default="", metavar="NAMES",
                   help="comma-separated nuisances to profile (bounds from [fit.priors] / --prior)")
    s.add_argument("--marginalise", action="store_true", help="marginalise the --profile nuisances (Laplace)")
    s.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="hold a parameter at a value")
    s.add_argument("--prior", action="append", default=[], metavar="NAME=KIND:A:B")
    s.add_argument("--out", required=True, help="output folder (resumed if it holds a matching scan)")
    s.add_argument("--chunk-size", type=int, default=4096)
    s.add_argument("--asimov", action="store_true", help="scan Asimov data (the default prediction)")
    s.add_argument("--float32", action="store_true", help="compute in float32 (GPU throughput)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_cmd_scan)

    u = sub.add_parser("unfold", help="unfold the reactor flux below 1.8 MeV (NUCLEUS-like scenarios 1-3 of 2302.10460)")
    u.add_argument("spec", help="scenario: 1, 2 or 3 (or scenario1 ...)")
    u.add_argument("--out", required=True)
    u.add_argument("--toys", type=int, default=1000)
    u.add_argument("--betas", type=int, default=100)
    u.add_argument("--beta", default="physical", help="'physical', 'bias' or a number")
    u.add_argument("--no-capture", action="store_true", help="truth without the 238U(n,gamma) branch")
    u.add_argument("--seed", type=int, default=0)
    u.set_defaults(func=_cmd_unfold)
    return p


def _cmd_demo(args) -> int:
    from cevnsjax.demo import run_demo

    paths = run_demo(args.out, n_points=args.points, num_warmup=args.num_warmup, num_samples=args.num_samples,
                     num_chains=args.num_chains, seed=args.seed)
    for path in paths:
        print(path)
    print(open(Path(args.out) / "summary.txt").read())
    return 0


def _cmd_experiments(args) -> int:
    from cevnsjax.io.spec import load_spec, preset_names

    for name in preset_names():
        print(f"{name:18s} {load_spec(name).get('description', '')}")
    return 0


def _cmd_predict(args) -> int:
    import json

    import numpy as np

    from cevnsjax.experiment import FLAVOUR_ROWS, predict
    from cevnsjax.io.spec import SpecError, experiment_from_spec, load_spec

    try:
        exp = experiment_from_spec(load_spec(args.spec))
    except (SpecError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pred = predict(exp.default_params(), exp.prepare())
    edges = list(exp.observable.edges)
    flav = {name: np.asarray(row).tolist() for name, row in zip(FLAVOUR_ROWS, pred.signal_by_flavour)
            if float(np.sum(np.asarray(row))) > 0}
    out = {
        "experiment": exp.name, "description": exp.description, "observable": exp.observable.kind,
        "unit": exp.observable.unit, "bin_edges": edges, "time_edges_us": exp.observable.time_edges_us,
        "exposure_kg_day": exp.exposure_kg_day, "counts_unit": "expected events per bin for the exposure",
        "signal": np.asarray(pred.signal).tolist(), "signal_by_flavour": flav,
        "background": np.asarray(pred.background).tolist(), "total": np.asarray(pred.total).tolist(),
        "totals": {"signal": float(np.sum(pred.signal)), "background": float(np.sum(pred.background)),
                   "total": float(np.sum(pred.total))},
    }
    if exp.observed is not None:
        out["observed"] = exp.observed.values.tolist()
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"# {exp.name}: {exp.description}")
    print(f"# exposure {exp.exposure_kg_day:.6g} kg day; counts per bin; observable {exp.observable.kind}")
    sig, bkg = np.asarray(pred.signal), np.asarray(pred.background)
    if sig.ndim == 1:
        print(f"{'lo':>10s} {'hi':>10s} {'signal':>12s} {'background':>12s} {'total':>12s}")
        for i in range(sig.size):
            print(f"{edges[i]:10.4g} {edges[i + 1]:10.4g} {sig[i]:12.5g} {bkg[i]:12.5g} {sig[i] + bkg[i]:12.5g}")
    else:
        print(f"# two-dimensional observable {sig.shape}: use --json for all bins; totals below")
    t = out["totals"]
    print(f"# totals: signal {t['signal']:.6g}  background {t['background']:.6g}  total {t['total']:.6g}")
    for name, row in flav.items():
        print(f"#   {name:10s} {float(np.sum(row)):.6g}")
    return 0


def _parse_prior(text: str):
    from cevnsjax.io.spec import SpecError

    if "=" not in text:
        raise SpecError(f"--prior {text!r}: write NAME=KIND:A:B, e.g. q=uniform:-4e-4:2e-4")
    name, rest = text.split("=", 1)
    kind, *args = rest.split(":")
    try:
        return name, (kind, *map(float, args))
    except ValueError:
        raise SpecError(f"--prior {text!r}: the arguments after the kind must be numbers") from None


def _default_priors(exp) -> dict:
    """signal_scale ~ U(0, 5) and every background's amplitude-like field ~ U(0, 10 x default + 1)."""
    from cevnsjax.experiment import traced_fields

    out = {"signal_scale": ("uniform", 0.0, 5.0)}
    for b in exp.defaults.backgrounds:
        for f in traced_fields(b):
            if f in ("rate", "rate0", "amplitude", "scale", "A", "B", "h_L1"):
                v = abs(float(getattr(b, f)))
                out[f"bkg.{b.name}.{f}"] = ("uniform", 0.0, 10.0 * v + 1.0)
    return out


def _cmd_fit(args) -> int:
    import json

    import numpy as np

    from cevnsjax.stats.model import Analysis, JointModel
    from cevnsjax.io.spec import SpecError, experiment_from_spec, fit_priors, load_spec

    try:
        spec = load_spec(args.spec)
        exp = experiment_from_spec(spec)
        priors = fit_priors(spec) or _default_priors(exp)
        priors.update(dict(_parse_prior(p) for p in args.prior))
        model = JointModel([Analysis(exp, priors)])
        obs = model.asimov() if args.asimov else model.observed()
    except (SpecError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fit = model.fit(obs=obs, n_starts=4)
    fit.save(str(out / "mle.json"))
    print(fit)
    if args.method == "nuts":
        res = model.sample(obs=obs, num_warmup=args.num_warmup, num_samples=args.num_samples,
                           num_chains=args.num_chains, seed=args.seed, init_values=dict(fit.params))
        res.save(out / "posterior.nc")
        res.plot_corner(out / "corner.png")
        if len(exp.observable.shape) == 1:
            res.plot_spectrum(out / "spectrum.png", edges=np.asarray(exp.observable.edges),
                              xlabel=f"{exp.observable.kind}")
        summary = res.summary()
        (out / "summary.csv").write_text(summary.to_csv())
        print(summary.to_string())
        print(f"converged: {res.converged} (divergences: {res.num_divergences})")
    report = {"experiment": exp.name, "method": args.method, "priors": {k: list(v) if isinstance(v, tuple) else str(v)
                                                                       for k, v in priors.items()},
              "mle": {k: float(np.asarray(v)) for k, v in fit.params.items()}, "minus2lnL": fit.minus2lnL,
              "mle_converged": fit.converged}
    (out / "fit.json").write_text(json.dumps(report, indent=2))
    return 0


def _cmd_scan(args) -> int:
    import hashlib
    import json

    import jax.numpy as jnp
    import numpy as np

    from cevnsjax import __version__
    from cevnsjax.stats.model import Analysis, JointModel
    from cevnsjax.experiment import valid_names
    from cevnsjax.stats.scan import Grid, parse_axis, plot_exclusion, plot_scan, run_scan
    from cevnsjax.io.spec import SpecError, experiment_from_spec, fit_priors, load_spec

    try:
        spec = load_spec(args.spec)
        exp = experiment_from_spec(spec)
        priors = fit_priors(spec)
        priors.update(dict(_parse_prior(p) for p in args.prior))
        names = [n for n in args.profile.split(",") if n]
        missing = [n for n in names if n not in priors]
        if missing:
            raise SpecError(f"--profile {missing}: give their bounds with --prior NAME=uniform:LO:HI or in [fit.priors]")
        model = JointModel([Analysis(exp, {n: priors[n] for n in names})])
        valid = valid_names(exp.defaults, model.analyses[0].component_names, exp)
        grid = Grid([parse_axis(a, valid) for a in args.param])
        fixed = {}
        for f in args.fix:
            k, _, v = f.partition("=")
            fixed[k] = float(v)
        obs = model.asimov() if args.asimov else model.observed()
    except (SpecError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = model.init_values()
    bounds = model.bounds()
    profile = {n: (start[n], *bounds[n]) for n in names}
    dtype = np.float32 if args.float32 else np.float64
    obs = {k: jnp.asarray(v, dtype) for k, v in obs.items()}

    def objective(values):
        return 2.0 * model.nll(values, obs)

    fp = hashlib.sha256(json.dumps([__version__, spec.get("name"), args.param, sorted(fixed.items()), names,
                                    args.asimov, args.marginalise], default=str).encode()).hexdigest()[:16]
    res = run_scan(objective, grid, fixed=fixed, profile=profile or None, chunk_size=args.chunk_size,
                   out_dir=args.out, progress=not args.no_progress, dtype=dtype, fingerprint=fp,
                   nuisance_mode="marginal" if args.marginalise else "profile")
    ds = res.to_dataset() if hasattr(res, "to_dataset") else None
    out = Path(args.out)
    if len(grid.names) == 2 and ds is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.5))
        plot_scan(ds, ax=ax)
        fig.savefig(out / "scan.png", dpi=120)
        plt.close(fig)
    best = res.best_fit()
    print(f"scan of {exp.name}: {grid.size} points; best {best}")
    print(f"results in {out}")
    return 0


def _cmd_unfold(args) -> int:
    import json

    import numpy as np

    from cevnsjax.io.location import data_dir
    from cevnsjax.stats.unfold import SCENARIOS, run_unfolding

    key = args.spec.replace("scenario", "")
    if not key.isdigit() or int(key) not in SCENARIOS:
        print(f"error: scenario {args.spec!r} is not known; use one of {sorted(SCENARIOS)}", file=sys.stderr)
        return 2
    root = data_dir()
    if root is None:
        print("error: unfolding needs the reactor tables below 2 MeV from the data folder; set $CEVNSJAX_DATA",
              file=sys.stderr)
        return 2
    beta = args.beta if args.beta in ("physical", "bias") else float(args.beta)
    res = run_unfolding(int(key), data_dir=root, n_toys=args.toys, n_betas=args.betas, beta=beta,
                        capture=not args.no_capture, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res.save(out / "unfolding.npz")
    (out / "summary.json").write_text(json.dumps(res.summary(), indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.asarray(res.nu_edges_MeV)
    c = 0.5 * (e[1:] + e[:-1])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.stairs(res.nu_true, e, label="true (incl. capture)" if not args.no_capture else "true", color="k")
    a1.fill_between(c, res.band95[0], res.band95[1], alpha=0.25, step=None, label="95% toys")
    a1.fill_between(c, res.band68[0], res.band68[1], alpha=0.4, label="68% toys")
    a1.errorbar(c, res.nu_hat, res.sigma, fmt="o", label=f"unfolded, beta={res.beta:.3g}")
    a1.set_xlabel("E_nu [MeV]"), a1.set_ylabel("nu / (MeV fission)"), a1.legend(fontsize=8)
    sc = res.scan
    a2.loglog(sc.betas, sc.variance, label="variance (tr U)")
    a2.loglog(sc.betas, sc.bias_sq, label="bias^2 (toy mean)")
    a2.axvline(res.beta, color="k", ls=":")
    a2.set_xlabel("beta"), a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "unfolding.png", dpi=120)
    s = res.summary()
    print(f"{s['scenario']}: beta = {s['beta']:.3g} (physical {s['beta_physical']:.3g}, bias {s['beta_bias']:.3g}); "
          f"flux 0-1.8 MeV: true {s['flux_unfolded_range_true']:.3f}, estimate {s['flux_unfolded_range_estimate']:.3f}, "
          f"95% upper {s['flux_unfolded_range_upper95']:.3f} nu/fission")
    return 0


def main(argv=None) -> int:
    from cevnsjax.config import enable_x64

    enable_x64()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
