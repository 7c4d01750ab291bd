"""Shared helpers for the scripts in ``models/`` (command line, output folder, JSON, summaries).

Every model script follows the numpyro-examples style::

    from _common import make_parser, setup, write_json, posterior_summary, fit_summary

    def main(args):
        out = setup(args)                      # float64, matplotlib Agg, output folder
        ...
        write_json(out / "summary.json", summary)

    if __name__ == "__main__":
        main(make_parser(__doc__).parse_args())

Scripts import this file as a sibling (``models/`` is on ``sys.path`` when a script runs as
``python models/NAME.py``); tests load the scripts the same way, in a subprocess. The interface
below is kept stable: ``make_parser``, ``setup``, ``write_json``, ``jsonable``, ``posterior_summary``,
``fit_summary``, ``Timer``, ``Fitter``, ``interior``.

``Fitter`` is a fast maximum-likelihood helper for a :class:`cevnsjax.JointModel`: scipy's
L-BFGS-B on one jitted ``value_and_grad`` of ``model.nll``, compiled once per model, with any subset
of parameters held fixed without recompiling. ``cevnsjax.stats.fit.minimize`` compiles its Adam + L-BFGS
loop per set of free parameters (~5-9 s each for Dresden-II on 2 CPU cores), which is too slow for
scripts that fit the same likelihood with many different fixed sets (nested-model tests, profile
scans) under a CI time budget. Results are :class:`cevnsjax.stats.fit.FitResult` objects, so
``cevnsjax.stats.fit.compare`` / ``significance`` apply unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["make_parser", "setup", "write_json", "jsonable", "posterior_summary", "fit_summary", "Timer", "Fitter", "interior"]


def make_parser(doc: str | None = None, *, num_samples: int = 1000, num_warmup: int = 500, num_chains: int = 2,
                out: str | None = None) -> argparse.ArgumentParser:
    """Argument parser with the common options.

    ``--num-samples``, ``--num-warmup``, ``--num-chains`` (NUTS, per chain), ``--seed``, ``--out DIR``
    (output folder; default ``out_<script>``), ``--quick`` (smaller grids / fewer starts for CI and
    smoke tests; each script says what it shrinks), ``--no-plots``. Scripts add their own options.
    """
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first, epilog=None if doc is None else doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=num_samples, help=f"NUTS draws per chain (default {num_samples})")
    p.add_argument("--num-warmup", type=int, default=num_warmup, help=f"NUTS warmup steps per chain (default {num_warmup})")
    p.add_argument("--num-chains", type=int, default=num_chains, help=f"NUTS chains (default {num_chains})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=out, help="output folder (created if missing)")
    p.add_argument("--quick", action="store_true", help="smaller grids and fewer fit starts (CI smoke test)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    return p


def setup(args: argparse.Namespace, script: str | None = None) -> Path:
    """Switch JAX to float64, matplotlib to Agg, create and return the output folder.

    ``args.out`` defaults to ``out_<script stem>``. Validates the sampler counts (positive).
    """
    import matplotlib

    matplotlib.use("Agg")
    import cevnsjax

    cevnsjax.enable_x64()
    for name in ("num_samples", "num_chains"):
        v = getattr(args, name, 1)
        if v is None or v < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if getattr(args, "num_warmup", 0) is not None and args.num_warmup < 0:
        raise SystemExit(f"--num-warmup must be >= 0, got {args.num_warmup}")
    if getattr(args, "out", None) is None:
        args.out = f"out_{Path(script).stem}" if script else "out_model"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def jsonable(o):
    """Plain-Python version of ``o`` for JSON: NumPy/JAX scalars and arrays, Paths, tuples; NaN/inf -> None."""
    if isinstance(o, Mapping):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if hasattr(o, "__array__") or isinstance(o, np.ndarray):
        a = np.asarray(o)
        return jsonable(a.item() if a.ndim == 0 else a.tolist())
    return o


def write_json(path, obj, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(jsonable(obj), fh, indent=indent, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def posterior_summary(result, var_names: Sequence[str] | None = None) -> dict:
    """name -> {mean, sd, median, q68: [16, 84 %], q95: [2.5, 97.5 %], r_hat, ess_bulk} for the scalar latent
    sites of a :class:`cevnsjax.results.PosteriorResult` (chains merged; no ArviZ needed)."""
    names = list(result.latent_sites if var_names is None else var_names)
    diag = result.diagnostics(names) if result.num_draws >= 4 else {}
    out = {}
    for n in names:
        x = np.asarray(result.posterior[n], float)
        flat = x.reshape(x.shape[0] * x.shape[1], -1)
        for j in range(flat.shape[1]):
            key = n if flat.shape[1] == 1 else f"{n}[{j}]"
            v = flat[:, j]
            p = np.percentile(v, [2.5, 16, 50, 84, 97.5])
            d = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0, "median": float(p[2]),
                 "q68": [float(p[1]), float(p[3])], "q95": [float(p[0]), float(p[4])]}
            if n in diag:
                rh, es = (np.ravel(a) for a in diag[n])
                d["r_hat"], d["ess_bulk"] = float(rh[j]), float(es[j])
            out[key] = d
    return out


def fit_summary(fit) -> dict:
    """A :class:`cevnsjax.stats.fit.FitResult` as JSON-ready dict: chi2 (= -2 ln L incl. constraints), values,
    Hessian errors of the free parameters, convergence flag and message."""
    err = fit.errors
    return {"chi2": float(fit.minus2lnL), "params": {k: float(v) for k, v in fit.best_fit.items()},
            "errors": {k: float(v) for k, v in err.items()}, "free": list(fit.free_names),
            "converged": bool(fit.converged), "message": fit.message}


class Timer:
    """``with Timer() as t: ...``; ``t.s`` is the elapsed wall time in seconds."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.s = float("nan")
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0
        return False


class Fitter:
    """Bounded maximum likelihood of a :class:`cevnsjax.JointModel` with scipy L-BFGS-B.

    ``nll = model.nll`` (-ln L incl. the constraint terms of Normal priors; Uniform/LogUniform priors
    are box bounds). The optimiser works on ``z = (x - x_start) / scale`` so that parameters of very
    different sizes (q ~ 1e-4, background amplitudes ~ 1e2) are equally well conditioned; ``scales``
    (name -> typical 1-sigma size) default to the prior width (Normal sigma, or 1 % of a bounded range).
    The covariance is the inverse of the Hessian from central differences of the jitted gradient.

        f = Fitter(model, scales={"q": 1e-4})
        best = f.fit(n_starts=4)                       # FitResult (chi2 = best.minus2lnL)
        null = f.fit(init=best.best_fit, fixed={"q": 0.0})
        cevnsjax.stats.fit.compare(null, best).significance
    """

    def __init__(self, model, obs=None, scales: Mapping | None = None):
        import jax

        self.model = model
        self.obs = model.observed() if obs is None else obs
        self.names = list(model.priors)
        self.bounds = model.bounds()
        self.scales = {n: self._default_scale(n) for n in self.names}
        self.scales.update({k: float(v) for k, v in dict(scales or {}).items() if k in self.scales})
        names = tuple(self.names)

        def nll_vec(xv, obs):
            return model.nll(dict(zip(names, xv)), obs)

        self._vg = jax.jit(jax.value_and_grad(nll_vec))
        self.n_calls = 0

    def _default_scale(self, n):
        p = self.model.priors[n]
        if hasattr(p, "sigma") and not hasattr(p, "median"):
            return float(p.sigma)
        lo, hi = self.bounds[n]
        if lo is not None and hi is not None:
            return 0.01 * (hi - lo)
        return 1.0

    def value_and_grad(self, x: Mapping):
        """(nll, {name: d nll / d name}) at the full parameter dict ``x``."""
        v, g = self._vg(np.array([float(x[n]) for n in self.names]), self.obs)
        self.n_calls += 1
        g = np.asarray(g)
        return float(v), dict(zip(self.names, g.tolist()))

    def fit(self, init: Mapping | None = None, fixed: Mapping | Sequence[str] | None = None, *, n_starts: int = 1,
            seed: int = 0, start_scale: float = 3.0, hessian: bool = True, maxiter: int = 3000):
        """Minimise over the free parameters from ``init`` (default: the model's start values) plus
        ``n_starts - 1`` starts ``init + start_scale * scale * N(0, 1)`` (clipped into the bounds)."""
        from scipy.optimize import minimize as _sp_min

        from cevnsjax.stats.fit import FitResult

        x0 = dict(self.model.init_values())
        x0.update({k: float(v) for k, v in dict(init or {}).items() if k in x0})
        fixed = dict.fromkeys(fixed) if isinstance(fixed, (list, tuple, set)) else dict(fixed or {})
        bad = [k for k in fixed if k not in x0]
        if bad:
            raise ValueError(f"unknown fixed parameter(s) {bad}; valid: {self.names}")
        x0.update({k: float(v) for k, v in fixed.items() if v is not None})
        free = [n for n in self.names if n not in fixed]
        s = np.array([self.scales[n] for n in free])

        def clip(v, n):
            lo, hi = self.bounds[n]
            eps = 1e-9 * (abs(v) + 1e-30)
            if lo is not None:
                v = max(v, lo + eps)
            if hi is not None:
                v = min(v, hi - eps)
            return v

        base = np.array([clip(x0[n], n) for n in free])
        zb = [((None if self.bounds[n][0] is None else (self.bounds[n][0] - b) / sc),
               (None if self.bounds[n][1] is None else (self.bounds[n][1] - b) / sc))
              for n, b, sc in zip(free, base, s)]

        def full(z):
            x = dict(x0)
            x.update(zip(free, (base + s * z).tolist()))
            return x

        def fg(z):
            v, g = self.value_and_grad(full(z))
            if not np.isfinite(v):
                return 1e30, np.zeros_like(z)
            return v, np.array([g[n] for n in free]) * s

        rng = np.random.default_rng(seed)
        starts = [np.zeros(len(free))]
        for _ in range(max(n_starts, 1) - 1):
            z = start_scale * rng.standard_normal(len(free))
            starts.append(np.array([np.clip(zi, (-np.inf if l is None else l * 0.98), (np.inf if h is None else h * 0.98))
                                    for zi, (l, h) in zip(z, zb)]))
        best, start_nll = None, []
        if not free:
            v, _ = self.value_and_grad(full(np.zeros(0)))
            return FitResult(tuple(self.names), np.array([x0[n] for n in self.names]), (False,) * len(self.names), v / 1.0,
                             np.zeros((0, 0)), bool(np.isfinite(v)), 0, 0.0, np.array([v]), "no free parameters",
                             tuple(self.names), ((),) * len(self.names))
        for z0 in starts:
            r = _sp_min(fg, z0, jac=True, method="L-BFGS-B", bounds=zb,
                        options=dict(maxiter=maxiter, ftol=1e-13, gtol=1e-7, maxcor=20))
            start_nll.append(float(r.fun))
            if best is None or r.fun < best.fun:
                best = r
        z = best.x
        x = full(z)
        _, g = fg(z)
        # projected gradient: components pushing against an active bound do not count
        at_lo = np.array([l is not None and zi <= l + 1e-9 for zi, (l, _h) in zip(z, zb)])
        at_hi = np.array([h is not None and zi >= h - 1e-9 for zi, (_l, h) in zip(z, zb)])
        gp = np.where((at_lo & (g > 0)) | (at_hi & (g < 0)), 0.0, g)
        gmax = float(np.max(np.abs(gp))) if gp.size else 0.0
        msgs = [] if best.success else [str(best.message)]
        cov = np.full((len(free), len(free)), np.nan)
        if hessian:
            H = self.hessian(x, free)
            try:
                np.linalg.cholesky(0.5 * (H + H.T))
                cov = np.linalg.inv(0.5 * (H + H.T))
            except np.linalg.LinAlgError:
                msgs.append("Hessian not positive definite")
        edge = [n for n, a, b in zip(free, at_lo, at_hi) if a or b]
        if edge:
            msgs.append(f"at a bound: {edge}")
        ok = bool(np.isfinite(best.fun) and gmax < 1e-3 and not (hessian and np.isnan(cov).any()))
        return FitResult(names=tuple(self.names), values=np.array([x[n] for n in self.names], float),
                         free=tuple(n in free for n in self.names), nll=float(best.fun), covariance=cov,
                         converged=ok, n_iter=int(best.nit), grad_norm=gmax, start_nll=np.array(start_nll),
                         message="; ".join(msgs), keys=tuple(self.names), shapes=((),) * len(self.names))

    def hessian(self, x: Mapping, names: Sequence[str], rel_step: float = 1e-2) -> np.ndarray:
        """Hessian of nll over ``names`` at ``x`` by central differences of the gradient (step
        ``rel_step * scale``), in the original parametrisation."""
        n = len(names)
        H = np.zeros((n, n))
        for i, a in enumerate(names):
            h = rel_step * self.scales[a]
            xp, xm = dict(x), dict(x)
            xp[a] += h
            xm[a] -= h
            gp, gm = self.value_and_grad(xp)[1], self.value_and_grad(xm)[1]
            H[i] = [(gp[b] - gm[b]) / (2 * h) for b in names]
        return 0.5 * (H + H.T)


def interior(values: Mapping, model, frac: float = 1e-4) -> dict:
    """``values`` moved at least ``frac`` of the range inside the bounds of ``model``'s priors (NUTS cannot
    start on a bound: the unconstrained coordinate would be infinite). Names the model lacks are dropped."""
    out = {}
    for k, v in values.items():
        if k not in model.priors:
            continue
        lo, hi = model.bounds()[k]
        v = float(v)
        if lo is not None and hi is not None:
            span = hi - lo
            v = min(max(v, lo + frac * span), hi - frac * span)
            if lo > 0 and v < lo * (1 + frac):  # log-uniform ranges: relative margin at the lower end
                v = lo * (1 + frac)
            if hi > 0 and v > hi * (1 - frac):
                v = hi * (1 - frac)
        elif lo is not None:
            v = max(v, lo + frac * (abs(lo) + 1e-12))
        out[k] = v
    return out
