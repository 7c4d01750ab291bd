"""The ``cevnsjax`` command: ``--version``, ``demo``, ``experiments``, ``predict``, ``fit``, ``scan``, ``unfold``,
``init`` (a spec template, or docs/spec.md with ``--doc``), ``params`` (free parameter names) and ``data``
(list/verify/fetch the published data files)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from cevnsjax import __version__

    p = _Parser(prog="cevnsjax", description="Differentiable CEvNS rates and inference in JAX")
    p.add_argument("--version", action="version", version=f"cevnsjax {__version__}")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="SM spectra (CsI, Ge, Ar; reactor and pion DAR) and a NUTS fit of a simulated "
                                    "reactor experiment")
    d.add_argument("--out", required=True, help="output folder (created if missing)")
    d.add_argument("--points", type=int, default=200, help="recoil-energy points per spectrum (default 200)")
    d.add_argument("--num-samples", type=int, default=1500, help="NUTS samples per chain")
    d.add_argument("--num-warmup", type=int, default=1000, help="NUTS warm-up steps per chain")
    d.add_argument("--num-chains", type=int, default=4, help="NUTS chains")
    d.add_argument("--seed", type=int, default=0, help="random seed")
    d.add_argument("--strict", action="store_true", help="exit with code 3 when NUTS did not converge")
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
    f.add_argument("--method", choices=("nuts", "mle"), default="nuts",
                   help="nuts: MLE then a NUTS posterior; mle: maximum likelihood only")
    f.add_argument("--prior", action="append", default=[], metavar="NAME=KIND:A:B",
                   help="free parameter with its prior, e.g. q=uniform:-4e-4:2e-4 (repeatable; adds to [fit.priors])")
    f.add_argument("--num-samples", type=int, default=1000, help="NUTS samples per chain")
    f.add_argument("--num-warmup", type=int, default=500, help="NUTS warm-up steps per chain")
    f.add_argument("--num-chains", type=int, default=4, help="NUTS chains")
    f.add_argument("--seed", type=int, default=0, help="random seed")
    f.add_argument("--asimov", action="store_true", help="fit Asimov data (the default prediction) instead of the data")
    f.add_argument("--strict", action="store_true", help="exit with code 3 when the MLE or NUTS did not converge "
                   "(r_hat >= 1.01, low bulk ESS or divergences)")
    f.set_defaults(func=_cmd_fit)

    s = sub.add_parser("scan", help="Delta chi^2 over a grid of 1-3 parameters (chunked, sharded, resumable)")
    s.add_argument("spec", help="TOML specification file or preset name")
    s.add_argument("--param", action="append", required=True, metavar="NAME=lin|log:START:STOP:N",
                   help="grid axis, e.g. g_zprime=log:1e-7:1e-4:100 (1-3 times)")
    s.add_argument("--profile", default=None, metavar="NAMES",
                   help="comma-separated nuisances to profile (bounds from [fit.priors] / --prior); default: every "
                        "[fit.priors] / --prior nuisance (detector, background, flux; not signal_scale or physics "
                        "parameters) that is not a grid axis or fixed; 'none' profiles nothing")
    s.add_argument("--marginalise", action="store_true", help="marginalise the --profile nuisances (Laplace)")
    s.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="hold a parameter at a value")
    s.add_argument("--prior", action="append", default=[], metavar="NAME=KIND:A:B",
                   help="prior (bounds) of a nuisance, e.g. bkg.flat.rate=uniform:0:30 (repeatable; adds to [fit.priors])")
    s.add_argument("--out", required=True, help="output folder (see --resume, --overwrite)")
    s.add_argument("--chunk-size", type=int, default=4096, help="grid points per jitted chunk (one checkpoint each)")
    s.add_argument("--asimov", action="store_true", help="scan Asimov data (the default prediction)")
    s.add_argument("--float32", action="store_true", help="compute in float32 (GPU throughput)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run every chunk as a task on this dask.distributed scheduler (docs/distributed.md)")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run every chunk as a Dask task on an embedded LocalCluster of N worker processes")
    s.set_defaults(func=_cmd_scan)

    u = sub.add_parser("unfold", help="unfold the reactor flux below 1.8 MeV (NUCLEUS-like scenarios 1-3 of 2302.10460)")
    u.add_argument("spec", help="scenario: 1, 2 or 3 (or scenario1 ...)")
    u.add_argument("--out", required=True, help="output folder")
    u.add_argument("--toys", type=int, default=1000, help="pseudo-experiments for the bands and the bias")
    u.add_argument("--betas", type=int, default=100, help="regularisation strengths scanned")
    u.add_argument("--beta", default="physical", help="'physical', 'bias' or a number")
    u.add_argument("--no-capture", action="store_true", help="truth without the 238U(n,gamma) branch")
    u.add_argument("--seed", type=int, default=0, help="random seed")
    u.add_argument("--chunk-size", type=int, default=100,
                   help="toys per chunk (one jitted call, one file in --out/chunks, one Dask task each)")
    u.add_argument("--resume", action="store_true",
                   help="continue the unfolding in --out: finished toy chunks are read back, not recomputed")
    u.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run every toy chunk as a task on this dask.distributed scheduler (docs/distributed.md)")
    u.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run every toy chunk as a Dask task on an embedded LocalCluster of N worker processes")
    u.add_argument("--no-progress", action="store_true", help="no progress line for the Dask toy chunks")
    u.set_defaults(func=_cmd_unfold)

    i = sub.add_parser("init", help="write an annotated, runnable specification template (every key: docs/spec.md)")
    i.add_argument("path", help="TOML file to write (with --doc: the markdown file)")
    i.add_argument("--doc", action="store_true", help="write the specification reference (docs/spec.md) instead")
    i.add_argument("--overwrite", action="store_true", help="replace an existing file")
    i.set_defaults(func=_cmd_init)

    pa = sub.add_parser("params", help="the free parameter names of a spec or preset, with defaults and priors")
    pa.add_argument("spec", help="TOML specification file or preset name")
    pa.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pa.set_defaults(func=_cmd_params)

    da = sub.add_parser("data", help="the published data files: list, verify (sha256) or fetch them into the data folder")
    dsub = da.add_subparsers(dest="action", metavar="ACTION", required=True, help="list, verify or fetch")
    for action, text in (("list", "the registry: sha256 and path of every published file"),
                         ("verify", "check the files in the data folder against the registry (exit 1 if any is bad)"),
                         ("fetch", "copy/download the files into the data folder, checking each sha256")):
        a = dsub.add_parser(action, help=text)
        a.add_argument("names", nargs="*", help="data sets (e.g. dresden_ii) or files; all when none")
        a.add_argument("--dir", metavar="FOLDER", help="data folder (default: $CEVNSJAX_DATA, else the per-user data folder)")
        a.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of an error")
        if action == "fetch":
            a.add_argument("--from", dest="source", metavar="PATH_OR_URL", required=True,
                           help="folder, file:// or http(s):// base URL laid out like the release (dresden_ii/, ...)")
    da.set_defaults(func=_cmd_data)
    for sp in sub.choices.values():
        sp.formatter_class = _HelpFormatter
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    for name in ("demo", "fit", "scan", "unfold"):
        sub.choices[name].add_argument("--overwrite", action="store_true",
                                       help="clear an --out folder that holds another cevnsjax run")
    s.add_argument("--resume", action="store_true", help="continue the scan in --out (recomputed from scratch "
                   "when the spec, its data files or cevnsjax changed)")
    return p


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' after each option's help unless X is empty (None, False, []) or already stated."""

    def _get_help_string(self, action):
        h = action.help or ""
        d = action.default
        if d is None or d is False or d is argparse.SUPPRESS or (isinstance(d, list) and not d) or "default" in h:
            return h
        return super()._get_help_string(action)


def _cmd_init(args) -> int:
    from cevnsjax.io.schema import TEMPLATE, markdown

    path = Path(args.path)
    if path.exists() and not args.overwrite:
        print(f"error: {path} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown() if args.doc else TEMPLATE)
    print(f"wrote {path}" + ("" if args.doc else f"; run `cevnsjax predict {path}`"))
    return 0


def _cmd_params(args) -> int:
    import json

    import numpy as np

    from cevnsjax.experiment import get, valid_names
    from cevnsjax.io.outdir import json_safe
    from cevnsjax.io.spec import SpecError, experiment_from_spec, fit_priors, load_spec

    spec = load_spec(args.spec)
    priors = fit_priors(spec)
    try:
        exp = experiment_from_spec(spec)
    except (SpecError, FileNotFoundError) as err:  # without its data: the parameters the spec itself defines
        exp = experiment_from_spec(spec, with_data=False)
        print(f"# note: data not loaded ({err}); parameters of data-defined backgrounds are missing", file=sys.stderr)
    comps = tuple(c.name for c in exp.source.components())
    rows = []
    for n in valid_names(exp.defaults, comps, exp):
        v = np.asarray(get(exp.defaults, n, comps))
        rows.append({"name": n, "default": float(v) if v.ndim == 0 else v.tolist(),
                     "prior": list(priors[n]) if n in priors else None})
    if args.json:
        print(json.dumps(json_safe(rows), allow_nan=False))  # NaN / inf as null: strict JSON
        return 0
    print(f"# {exp.name}: {len(rows)} parameters ({len(priors)} with a [fit.priors] entry: free in fit, profiled in scan)")
    print(f"{'name':34s} {'default':>14s}  prior")
    for r in rows:
        print(f"{r['name']:34s} {r['default']:>14.6g}  {'' if r['prior'] is None else r['prior']}")
    return 0


def _cmd_data(args) -> int:
    from cevnsjax.io import datasets
    from cevnsjax.io.location import ENV_VAR, data_root

    root = Path(args.dir).expanduser().resolve() if args.dir else data_root()
    if args.action == "list":
        reg = datasets.registry()
        print(f"# data folder: {root}  (set ${ENV_VAR} or --dir to change it)")
        for name in datasets.select(args.names):
            print(f"{reg[name]}  {name}")
        return 0
    if args.action == "verify":
        status = datasets.verify(root, args.names)
        bad = {k: v for k, v in status.items() if v != "ok"}
        for name, v in bad.items():
            print(f"{v:8s} {root / name}")
        print(f"{len(status) - len(bad)}/{len(status)} files ok in {root}")
        if bad:
            print(f"fix: cevnsjax data fetch --from PATH_OR_URL{' --dir ' + str(root) if args.dir else ''}", file=sys.stderr)
        return 1 if bad else 0
    got = datasets.fetch(args.source, root, args.names)
    print(f"{len(got)} files fetched and verified (sha256) in {root}")
    return 0


def _cmd_demo(args) -> int:
    import json

    from cevnsjax.demo import run_demo

    paths = run_demo(args.out, n_points=args.points, num_warmup=args.num_warmup, num_samples=args.num_samples,
                     num_chains=args.num_chains, seed=args.seed)
    for path in paths:
        print(path)
    print((Path(args.out) / "summary.txt").read_text())
    rep = json.loads((Path(args.out) / "summary.json").read_text())
    if not rep["converged"]:
        print(f"warning: NUTS did not converge: {'; '.join(rep['convergence_failures'])}; no limit is stated",
              file=sys.stderr)
        if args.strict:
            return 3
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
    from cevnsjax.io.outdir import json_safe
    from cevnsjax.io.spec import experiment_from_spec, load_spec

    exp = experiment_from_spec(load_spec(args.spec))  # errors: one line from _run (a traceback with --debug)
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
        out.update(_goodness_of_fit(exp, pred))
    if args.json:
        print(json.dumps(json_safe(out), allow_nan=False))
        return 0
    print(f"# {exp.name}: {exp.description}")
    print(f"# exposure {exp.exposure_kg_day:.6g} kg day; counts per bin; observable {exp.observable.kind}")
    sig, bkg = np.asarray(pred.signal), np.asarray(pred.background)
    obs = None if exp.observed is None else exp.observed.values
    if sig.ndim == 1:
        print(f"{'lo':>10s} {'hi':>10s} {'signal':>12s} {'background':>12s} {'total':>12s}"
              + ("" if obs is None else f" {'observed':>12s}"))
        for i in range(sig.size):
            print(f"{edges[i]:10.4g} {edges[i + 1]:10.4g} {sig[i]:12.5g} {bkg[i]:12.5g} {sig[i] + bkg[i]:12.5g}"
                  + ("" if obs is None else f" {obs[i]:12.5g}"))
    else:
        print(f"# two-dimensional observable {sig.shape}: use --json for all bins; totals below")
    t = out["totals"]
    print(f"# totals: signal {t['signal']:.6g}  background {t['background']:.6g}  total {t['total']:.6g}"
          + ("" if obs is None else f"  observed {float(np.sum(obs)):.6g}"))
    if obs is not None:
        print(f"# {out['chi2_kind']} at the defaults (nothing fitted): {out['chi2']:.4g} for {out['ndf']} bins "
              f"(chi2/ndf {out['chi2'] / max(out['ndf'], 1):.3g}, p = {out['p_value']:.3g})")
        if out.get("zero_expected_with_counts"):
            print(f"# warning: {out['zero_expected_with_counts']} bins hold counts where nothing is expected "
                  "(left out of the deviance, where they would be infinite)")
    for name, row in flav.items():
        print(f"#   {name:10s} {float(np.sum(row)):.6g}")
    return 0


def _goodness_of_fit(exp, pred) -> dict:
    """chi^2 of the observed values at the default prediction: the Poisson deviance 2 sum[mu - n + n ln(n/mu)]
    for counts, sum((n - mu)/sigma)^2 for rates with errors; ndf = number of bins (nothing is fitted).
    Poisson bins with zero expectation are left out (their deviance is infinite if they hold counts:
    ``zero_expected_with_counts`` says how many)."""
    import numpy as np
    from scipy.stats import chi2 as chi2_dist

    from cevnsjax.stats.likelihood import gaussian_chi2, poisson_deviance

    o = exp.observed
    mu = np.asarray(pred.total)
    extra = {}
    if o.likelihood == "gaussian":
        c2, kind, ndf = float(gaussian_chi2(o.values, mu, sigma=o.errors)), "Gaussian chi2", int(o.values.size)
    else:
        used = mu > 0
        c2, kind, ndf = float(poisson_deviance(o.values[used], mu[used])), "Poisson deviance", int(used.sum())
        extra["zero_expected_with_counts"] = int(np.sum(~used & (o.values > 0)))
    return {"chi2": c2, "chi2_kind": kind, "ndf": ndf, "p_value": float(chi2_dist.sf(c2, ndf)), **extra}


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
    import hashlib

    import numpy as np

    from cevnsjax import __version__
    from cevnsjax.io.outdir import atomic_path, atomic_write_json, atomic_write_text
    from cevnsjax.io.spec import experiment_from_spec, fit_priors, load_spec, spec_path
    from cevnsjax.plots import fit_spectrum_parts, plot_fit_spectrum
    from cevnsjax.stats.infer import ConvergenceWarning, convergence_report
    from cevnsjax.stats.model import Analysis, JointModel

    spec = load_spec(args.spec)
    exp = experiment_from_spec(spec)
    priors = fit_priors(spec) or _default_priors(exp)
    priors.update(dict(_parse_prior(p) for p in args.prior))
    model = JointModel([Analysis(exp, priors)])
    obs = model.asimov() if args.asimov else model.observed()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec_file = spec_path(args.spec)
    spec_bytes = spec_file.read_bytes()
    provenance = {"spec_path": str(spec_file.resolve()), "spec_sha256": hashlib.sha256(spec_bytes).hexdigest()}
    fit = model.fit(obs=obs, n_starts=4)
    with atomic_path(out / "mle.nc") as tmp:  # netCDF; cevnsjax.results.load reads it
        fit.save(str(tmp), attrs={**provenance, "spec": spec_bytes.decode()})
    print(fit)
    gof = fit_spectrum_parts(model, fit, obs=obs)  # chi2 and ndf = bins - free parameters, as the plot shows
    with atomic_path(out / "fit_spectrum.png") as tmp:
        plot_fit_spectrum(model, fit, obs=obs, path=tmp)
    if args.method == "nuts":
        with warnings.catch_warnings():  # reported below, once, as one line
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = model.sample(obs=obs, num_warmup=args.num_warmup, num_samples=args.num_samples,
                               num_chains=args.num_chains, seed=args.seed, init_values=dict(fit.params))
        res.attrs.update(provenance, spec=spec_bytes.decode())
        with atomic_path(out / "posterior.nc") as tmp:
            res.save(tmp, coords=model.observed_coords())  # bin dims named by the observable, centres as coords
        with atomic_path(out / "corner.png") as tmp:
            res.plot_corner(tmp)
        if len(exp.observable.shape) == 1:
            with atomic_path(out / "spectrum.png") as tmp:
                res.plot_spectrum(tmp, edges=np.asarray(exp.observable.edges), xlabel=gof["xlabel"],
                                  ylabel=gof["ylabel"])
        summary = res.summary()
        atomic_write_text(out / "summary.csv", summary.to_csv())
        print(summary.to_string())
        nuts = convergence_report(res)
        print(f"converged: {nuts['converged']} (divergences: {res.num_divergences})")
        if nuts["failures"]:
            print(f"warning: NUTS did not converge: {'; '.join(nuts['failures'])}; rerun with larger --num-warmup "
                  "and --num-samples before using the posterior", file=sys.stderr)
    report = {"experiment": exp.name, "method": args.method, "priors": {k: list(v) if isinstance(v, tuple) else str(v)
                                                                       for k, v in priors.items()},
              "mle": {k: float(np.asarray(v)) for k, v in fit.params.items()}, "minus2lnL": fit.minus2lnL,
              "mle_converged": fit.converged, "errors": fit.errors, "units": model.parameter_units(),
              "chi2": gof["chi2"], "chi2_kind": "Gaussian chi2" if gof["likelihood"] == "gaussian" else
              "Poisson deviance", "ndf": gof["ndf"], "seed": args.seed, "asimov": bool(args.asimov),
              "cevnsjax_version": str(__version__), "spec": args.spec, **provenance}
    if args.method == "nuts":
        report["nuts"] = nuts
    atomic_write_json(out / "fit.json", report)
    if args.strict and (not fit.converged or (args.method == "nuts" and not nuts["converged"])):
        print("error: --strict: the fit did not converge (see the warning above and fit.json)", file=sys.stderr)
        return 3
    return 0


def _cmd_scan(args) -> int:
    import jax.numpy as jnp
    import numpy as np

    from cevnsjax import __version__
    from cevnsjax.experiment import check_names, valid_names
    from cevnsjax.io.outdir import atomic_path, atomic_write_text, fingerprint
    from cevnsjax.io.spec import SpecError, experiment_from_spec, fit_priors, load_spec, recorded_data_paths, spec_path
    from cevnsjax.plots import plot_exclusion, plot_scan
    from cevnsjax.reporting import parameter_unit
    from cevnsjax.stats.model import Analysis, JointModel
    from cevnsjax.stats.scan import Grid, ScanResult, confidence_threshold, exclusion_curve, parse_axis

    spec = load_spec(args.spec)
    exp = experiment_from_spec(spec)
    priors = fit_priors(spec)
    priors.update(dict(_parse_prior(p) for p in args.prior))
    if args.profile is None:  # default: every prior'd nuisance (not a parameter of interest) not scanned or fixed
        held = {a.split("=", 1)[0] for a in args.param} | {f.partition("=")[0] for f in args.fix}
        names = [n for n in priors if n not in held and _is_nuisance(n)]
    else:
        names = [n for n in args.profile.split(",") if n and n != "none"]
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
    check_names([*grid.names, *fixed, *names], exp.defaults, model.analyses[0].component_names, exp)
    obs = model.asimov() if args.asimov else model.observed()
    start = model.init_values()
    bounds = model.bounds()
    profile = {n: (start[n], *bounds[n]) for n in names}
    dtype = np.float32 if args.float32 else np.float64
    obs = {k: jnp.asarray(v, dtype) for k, v in obs.items()}

    # content fingerprint: the spec's contents, every data file it read, the version and the scan's settings
    fp = fingerprint(spec, recorded_data_paths(), __version__,
                     extra=[args.param, sorted(fixed.items()), names, args.asimov, args.marginalise, args.float32])
    resume = _resume_scan(Path(args.out), fp)
    if args.scheduler is not None or args.workers is not None:  # every chunk a Dask task
        from cevnsjax.stats.distributed import cli_scan

        res = cli_scan(args.spec, priors, names, grid, scheduler=args.scheduler, workers=args.workers,
                       asimov=args.asimov, float32=args.float32, fixed=fixed, profile=profile or None,
                       chunk_size=args.chunk_size, out_dir=args.out, progress=not args.no_progress, dtype=dtype,
                       fingerprint=fp, resume=resume, nuisance_mode="marginal" if args.marginalise else "profile")
    else:
        res = model.scan(grid, fixed=fixed, profile=profile, obs=obs, chunk_size=args.chunk_size,
                         out_dir=args.out, progress=not args.no_progress, dtype=dtype, fingerprint=fp, resume=resume,
                         nuisance_mode="marginal" if args.marginalise else "profile")
    out = Path(args.out)
    if isinstance(res, ScanResult):  # record the spec text and the units, and rewrite scan.nc with them
        spec_file = spec_path(args.spec)
        res.attrs.update(spec=spec_file.read_text(), spec_path=str(spec_file.resolve()),
                         parameter_units={n: parameter_unit(n, exp.observable.kind) or "unknown"
                                          for n in [*grid.names, *names]})
        if (out / "scan.nc").exists():
            res.save(out / "scan.nc")
    ds = res.to_dataset() if hasattr(res, "to_dataset") else None
    if len(grid.names) == 2 and ds is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.5))
        plot_scan(ds, ax=ax)
        with atomic_path(out / "scan.png") as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)
        # exclusion: the convention of plot_scan / plot_exclusion, 90 % CL with Wilks' dof = 2 (the plane)
        mass, coupling = grid.names
        if coupling.startswith("m_") or coupling.endswith("_MeV"):
            mass, coupling = coupling, mass
        t = confidence_threshold("90%", 2)
        m, lim, open_top = exclusion_curve(ds, mass, coupling, "90%", dof=2)
        head = (f"# cevnsjax {__version__}, {exp.name}: upper limit on {coupling} at 90% CL per {mass}, where "
                f"Delta chi^2 = {t:.6g} (Wilks, dof=2: the ({mass}, {coupling}) plane, as plot_scan and "
                "plot_exclusion); open_top=1: allowed up to the top of the grid (the limit lies above it); "
                "nan: every coupling on the grid is excluded\n")
        rows = "".join(f"{x:.10g},{y:.10g},{int(o)}\n" for x, y, o in zip(m, lim, open_top))
        atomic_write_text(out / "exclusion.csv", head + f"{mass},{coupling}_limit_90CL,open_top\n" + rows)
        fig, ax = plt.subplots(figsize=(6, 4.5))
        plot_exclusion(ds, mass=mass, coupling=coupling, levels=("90%",), dof=2, ax=ax, label=exp.name)
        ax.set_title(f"{exp.name}: 90% CL exclusion ($\\Delta\\chi^2$ = {t:.3f}, 2 dof)", fontsize=10)
        with atomic_path(out / "exclusion.png") as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
        plt.close(fig)
    best = res.best_fit()
    print(f"scan of {exp.name}: {grid.size} points; best {best}")
    print(f"profiled: {', '.join(names) if names else 'nothing'}")
    if not args.asimov:
        at_best = {**fixed, **{k: v for k, v in best.items() if k != "chi2"}}
        mu, n = np.asarray(model.expected(at_best)[exp.name]), np.asarray(obs[exp.name])
        _warn_bad_fit(best["chi2"], int(np.prod(exp.observable.shape)), len(grid.names) + len(names),
                      zero_expected=int(np.sum((mu <= 0) & (n > 0))))
    print(f"results in {out}")
    return 0


def _resume_scan(out: Path, fp: str) -> bool:
    """Whether the scan in ``out`` may be resumed: not when its manifest's fingerprint differs from ``fp``
    (the spec, a data file or cevnsjax changed), which is said on stderr; every point is then recomputed."""
    import json

    mpath = out / "manifest.json"
    if not mpath.exists():
        return True
    try:
        old = json.loads(mpath.read_text()).get("fingerprint")
    except ValueError:
        old = None
    if old == fp:
        return True
    print(f"note: the spec, its data files or cevnsjax changed since the scan in {out} was started: discarding its "
          "finished chunks and recomputing every point", file=sys.stderr)
    return False


def _is_nuisance(name: str) -> bool:
    """Detector, background and flux parameters; not signal_scale or a physics parameter (a parameter of interest)."""
    from cevnsjax.experiment import PHYSICS_SCALARS

    return name != "signal_scale" and name not in PHYSICS_SCALARS and not name.startswith(
        ("eps_", "magnetic_moment_", "charge_radius2_"))


def _warn_bad_fit(chi2_min: float, n_bins: int, n_free: int, ratio: float = 2.0, zero_expected: int = 0) -> bool:
    """Print a warning to stderr when chi2_min / ndf > ``ratio`` (ndf = bins - free parameters): the model
    does not describe the data, so Delta chi^2 intervals are not to be trusted. ``zero_expected``: bins with
    counts where the best fit expects none (each adds ~700 n to chi^2: the likelihood floors mu at 1.5e-154).
    Returns whether it warned."""
    ndf = n_bins - n_free
    if ndf <= 0 or not chi2_min / ndf > ratio:
        return False
    why = (f" ({zero_expected} bins hold counts where the model expects none: drop them from the binning or model "
           "a background there)" if zero_expected else "")
    print(f"warning: chi2_min / ndf = {chi2_min:.4g} / {ndf} = {chi2_min / ndf:.3g} > {ratio:g}: the model does not "
          f"describe the data at any grid point{why}; profile the nuisances (--profile, [fit.priors]) or check the "
          "backgrounds before reading Delta chi^2 intervals", file=sys.stderr)
    return True


def _cmd_unfold(args) -> int:
    import numpy as np

    from cevnsjax.io.location import data_dir
    from cevnsjax.io.outdir import atomic_path, atomic_write_json
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
    try:
        beta = args.beta if args.beta in ("physical", "bias") else float(args.beta)
        if not isinstance(beta, str) and not (np.isfinite(beta) and beta >= 0):
            raise ValueError
    except ValueError:
        raise ValueError(f"--beta {args.beta!r}: give 'physical', 'bias' or a finite number >= 0") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(data_dir=root, n_toys=args.toys, n_betas=args.betas, beta=beta, capture=not args.no_capture,
              seed=args.seed, chunk_size=args.chunk_size, out_dir=out, resume=args.resume)
    if args.scheduler is not None or args.workers is not None:  # every toy chunk a Dask task
        from cevnsjax.stats.distributed import cli_unfold

        res = cli_unfold(int(key), scheduler=args.scheduler, workers=args.workers,
                         progress=not args.no_progress, **kw)
    else:
        res = run_unfolding(int(key), **kw)
    with atomic_path(out / "unfolding.npz") as tmp:
        res.save(tmp)
    atomic_write_json(out / "summary.json", res.summary())
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
    with atomic_path(out / "unfolding.png") as tmp:
        fig.savefig(tmp, dpi=120)
    s = res.summary()
    print(f"{s['scenario']}: beta = {s['beta']:.3g} (physical {s['beta_physical']:.3g}, bias {s['beta_bias']:.3g}); "
          f"flux 0-1.8 MeV: true {s['flux_unfolded_range_true']:.3f}, estimate {s['flux_unfolded_range_estimate']:.3f}, "
          f"95% upper {s['flux_unfolded_range_upper95']:.3f} nu/fission")
    return 0


def main(argv=None) -> int:
    from cevnsjax.config import enable_x64

    enable_x64()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help / --version exit 0; a bad flag has printed its one line
        if stop.code in (0, None):
            raise
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _run(args)


def _run(args) -> int:
    """Run a command with one error path: a ValueError (SpecError), TypeError or OSError ends as one line
    ``error: ...`` on stderr and exit code 2 (a traceback only with ``--debug``). Commands with ``--out``
    run inside an :class:`~cevnsjax.io.outdir.OutputFolder` (checked and locked before any computation);
    the data files a spec names are recorded for the scan's content fingerprint."""
    import contextlib

    from cevnsjax.io.outdir import OutputFolder
    from cevnsjax.io.spec import record_data_paths

    folder = None
    try:
        _check_flags(args)
        with contextlib.ExitStack() as stack:
            stack.enter_context(record_data_paths())
            if getattr(args, "out", None) is not None:
                folder = stack.enter_context(OutputFolder(args.out, args.command, overwrite=args.overwrite,
                                                          resume=getattr(args, "resume", False)))
            rc = int(args.func(args) or 0)
            if folder is not None and rc != 0:
                folder.failed = True
            return rc
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as err:
        if getattr(args, "debug", False):
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(err: BaseException) -> str:
    """The error's message on one line (an OSError as 'PATH: reason')."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


_POSITIVE_FLAGS = {"chunk_size": "--chunk-size", "toys": "--toys", "betas": "--betas", "num_samples": "--num-samples",
                   "num_chains": "--num-chains", "points": "--points", "workers": "--workers"}


def _check_flags(args):
    """Refuse flag values no command can use, naming the flag, the value and the fix (before any computation)."""
    import math

    for attr, flag in _POSITIVE_FLAGS.items():
        v = getattr(args, attr, None)
        if v is not None and v < 1:
            raise ValueError(f"{flag} = {v}: must be an integer >= 1")
    if getattr(args, "scheduler", None) is not None and getattr(args, "workers", None) is not None:
        raise ValueError("--scheduler and --workers: give one (a running scheduler, or N local worker "
                         "processes), not both")
    if getattr(args, "num_warmup", 0) < 0:
        raise ValueError(f"--num-warmup = {args.num_warmup}: must be an integer >= 0")
    for f in getattr(args, "fix", []) or []:
        name, eq, val = f.partition("=")
        try:
            ok = bool(eq and name.strip()) and math.isfinite(float(val))
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"--fix {f!r}: write NAME=VALUE with a finite number, e.g. --fix k=0.2")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
