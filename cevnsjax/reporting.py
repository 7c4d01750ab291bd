"""Writing analysis results: JSON of NumPy/JAX values, fit and posterior summaries, a wall-clock timer.

Used by the scripts in ``models/`` and by ``docs/make_results.py``; nothing here touches the physics::

    best = model.fit()
    write_json("out/summary.json", {"mle": fit_summary(best), "nuts": posterior_summary(post)})
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["jsonable", "write_json", "fit_summary", "posterior_summary", "inside_bounds", "Timer",
           "OBSERVABLE_AXES", "observable_axis", "parameter_unit", "with_unit"]


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
    if hasattr(o, "__array__"):
        a = np.asarray(o)
        return jsonable(a.item() if a.ndim == 0 else a.tolist())
    return o


def write_json(path, obj, indent: int = 2) -> Path:
    """Write ``jsonable(obj)`` to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
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


def fit_summary(fit) -> dict:
    """A :class:`cevnsjax.stats.fit.FitResult` as a JSON-ready dict: ``chi2`` (= -2 ln L incl. constraint
    terms), ``params``, Hessian ``errors`` of the free parameters, ``free`` names, ``converged``, ``message``."""
    return {"chi2": float(fit.minus2lnL), "params": {k: float(np.asarray(v)) for k, v in fit.best_fit.items()},
            "errors": {k: float(np.asarray(v)) for k, v in fit.errors.items()}, "free": list(fit.free_names),
            "converged": bool(fit.converged), "message": str(getattr(fit, "message", ""))}


def posterior_summary(result, var_names: Sequence[str] | None = None) -> dict:
    """name -> {mean, sd, median, q68: [16, 84 %], q95: [2.5, 97.5 %], r_hat, ess_bulk} of the latent sites of
    a :class:`cevnsjax.results.PosteriorResult` (chains merged; array sites give ``name[j]`` entries)."""
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


def inside_bounds(values: Mapping, model, frac: float = 1e-4) -> dict:
    """``values`` moved at least ``frac`` of the range inside the prior bounds of ``model`` (a JointModel), e.g.
    a best fit on a bound as NUTS starting values (the unconstrained coordinate would be infinite there).
    Names the model lacks are dropped."""
    bounds = model.bounds()
    out = {}
    for k, v in values.items():
        if k not in model.priors:
            continue
        lo, hi = bounds[k]
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


class Timer:
    """``with Timer() as t: ...``; ``t.s`` is the elapsed wall time in seconds (NaN inside the block)."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.s = float("nan")
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0
        return False


# ------------------------------------------------------------------------------------------- units
#: observable kind -> (symbol, unit) for axis labels, dimension names and netCDF ``units`` attributes
OBSERVABLE_AXES = {"E_R_keV": ("E_R", "keV"), "E_ee_keV": ("E_ee", "keVee"), "PE": ("PE", "PE")}
_UNITS = {"m_zprime_MeV": "MeV", "m_scalar_MeV": "MeV", "delta_rp_fm": "fm", "delta_rn_fm": "fm"}
_DIMENSIONLESS = ("k", "q", "signal_scale", "flux_norm", "sin2_theta_w", "g_zprime", "g_scalar", "delta_gp_v",
                  "delta_gn_v")


def observable_axis(kind: str) -> tuple:
    """(symbol, unit) of an observable kind, e.g. ``"E_ee_keV"`` -> ``("E_ee", "keVee")``."""
    return OBSERVABLE_AXES.get(kind, (kind, ""))


def parameter_unit(name: str, observable_kind: str | None = None) -> str | None:
    """Unit of a free parameter name ("1" when dimensionless, None when not known).

    Quenching k and q (modified Lindhard, q/eps with eps dimensionless), scales, couplings and NSI
    epsilons: "1"; masses: "MeV"; radius shifts: "fm"; ``magnetic_moment_1e10_muB_*``: "1e-10 mu_B";
    ``charge_radius2_1e32_cm2_*``: "1e-32 cm^2"; background ``rate``/``rate0``: counts/(unit kg day) and
    ``amplitude``: counts/(kg day), ``centre``/``sigma``/``decay`` in the observable's unit (given by
    ``observable_kind``), ``scale``: "1". An ``<experiment>:`` prefix is ignored.
    """
    base = name.split(":", 1)[-1]
    if base in _UNITS:
        return _UNITS[base]
    if base in _DIMENSIONLESS or base.startswith(("eps_", "flux.", "quenching.")):
        return "1"
    if base.startswith("magnetic_moment_1e10_muB"):
        return "1e-10 mu_B"
    if base.startswith("charge_radius2_1e32_cm2"):
        return "1e-32 cm^2"
    if base.startswith("bkg."):
        field = base.rsplit(".", 1)[-1]
        unit = observable_axis(observable_kind)[1] if observable_kind else None
        if field == "scale":
            return "1"
        if field == "amplitude":
            return "counts/(kg day)"
        if field in ("rate", "rate0") and unit:
            return f"counts/({unit} kg day)"
        if field in ("centre", "sigma", "decay") and unit:
            return unit
    return None


def with_unit(label: str, unit: str | None) -> str:
    """``"m_zprime_MeV [MeV]"``; the label alone when the unit is unknown or "1"."""
    return f"{label} [{unit}]" if unit and unit != "1" else label

