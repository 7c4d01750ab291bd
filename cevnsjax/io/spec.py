"""Experiment specifications (TOML or dict) -> validated :class:`~cevnsjax.experiment.Experiment`.

Every table and key is checked: an unknown key is rejected with the closest valid one, a bad value
with the key path, the value and the fix. ``${CEVNSJAX_DATA}`` in a path expands to the data folder
(:func:`cevnsjax.io.location.data_dir`). Presets are TOML files in ``cevnsjax/experiments/``; data
loaders (observed counts, templates) are registered in ``DATA_LOADERS`` by name.

Schema (keys in brackets are optional)::

    name = "..."            [description = "..."]
    [target]    formula = "Ge"   mass_kg = 2.924
    [exposure]  live_days = 96.4
    [source]    type = "reactor" | "pion_dar" | "tabulated"
                reactor:   [preset = "dresden_ii" | "conus"]  [power_GW]  [distance_m]
                           [fission_fractions = "dayabay" | {U235 = ..}]  [energy_per_fission]
                           [low_energy_tables = false]  [capture = "bestiole" | "curve" | "none"]
                           [total_flux_cm2_s = 4.8e13]  (rescales the flux to this total)
                pion_dar:  preset = "coherent_csi_2017" | "sns" | "csns"  or  nu_per_flavour_per_proton,
                           protons_per_second, distance_m  [power_MW]  [total_flux_cm2_s]
                tabulated: path, [flavour = "e"], [antineutrino = true], [interpolation = "linear"], [scale]
    [cross_section]  [form_factor = "helm" | "klein_nystrand" | "symmetrized_fermi"]  [couplings = "tree"]
                     [kinematics = "full"]  [charge_radius_correction]
    [detector]  observable = "E_R_keV" | "E_ee_keV" | "PE"
                edges = [...]  or  bins = {start, stop, n, [spacing = "lin" | "log"]}
                [recoil_grid = {min_keV, max_keV, [n_bins], [nodes_per_bin]}]
                [time_edges_us = [...]]  [time_pdfs = {component = "path"}]  [truncate_at_zero = false]
                [efficiency_subbins = 1]  (efficiency averaged over sub-bins of each bin)
                [smearing = "exact" | "grid"]  [smearing_step]  ("grid": the resolution is fixed and
                tabulated once on a grid in the true observable, step in keV/keVee, automatic if absent)
      [detector.quenching]   model = "lindhard" | "modified_lindhard" | "constant" | "tabulated" | "polynomial"
      [detector.resolution]  model = "ge" | "gaussian" | "poisson_pe" | "gamma_pe"
      [detector.efficiency]  model = "coherent_2017" | "coherent_2021" | "tabulated" | "constant"
      [detector.time_efficiency]  model = "coherent_2021"  [t0]  [slope]  [t_max]
    [[background]]  type = "flat" | "exponential" | "gaussian_line" | "template"  name = "..."  ...
    [data]      loader = "<registered name>"  path = "${CEVNSJAX_DATA}/..."
    [fit.priors]  name = ["uniform", lo, hi] | ["normal", mu, sigma] | ...   (for ``cevnsjax fit``)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tomllib
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from cevnsjax.detector.backgrounds import Exponential, Flat, GaussianLine, Template
from cevnsjax.detector.per_nucleus import PerNucleusQuenching
from cevnsjax.detector.quenching import ConstantQuenching, Lindhard, ModifiedLindhard, PolynomialLightYield
from cevnsjax.detector.response import (
    Coherent2017Efficiency,
    Coherent2021Efficiency,
    Coherent2021TimeEfficiency,
    ConstantEfficiency,
    GeResolution,
)
from cevnsjax.experiment import (
    MAX_LIVE_DAYS,
    MAX_MASS_KG,
    SMEARING,
    Experiment,
    ExperimentParams,
    GammaPE,
    GaussianResolution,
    Observable,
    PoissonPE,
    RecoilGrid,
)
from cevnsjax.io.detector_tables import load_arrival_time_pdf, load_dresden_ii_qf, load_efficiency_table
from cevnsjax.io.location import ENV_VAR, FETCH_HINT, data_dir, data_root
from cevnsjax.io.registry import DATA_LOADERS, SpecError, register_loader
from cevnsjax.names import closest
from cevnsjax.physics.formfactors import Helm, KleinNystrand, SymmetrizedFermi
from cevnsjax.physics.nuclei import ELEMENTS, parse_formula
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.physics.xsec import CrossSectionModel
from cevnsjax.sources import PionDAR, Reactor, ScaledSource
from cevnsjax.sources.tabulated import TabulatedFlux

__all__ = ["SpecError", "spec_path", "load_spec",
           "experiment_from_spec", "fit_priors", "DATA_LOADERS", "register_loader", "PRESET_DIR",
           "preset_names", "load_preset"]

PRESET_DIR = Path(__file__).parent / "presets"


def _closest(key, valid):
    c = closest(key, valid, cutoff=0.5)
    return f" (did you mean {c!r}?)" if c else ""


def _check_keys(table: dict, where: str, required=(), optional=()):
    if not isinstance(table, dict):
        raise SpecError(f"[{where}] must be a table, got {type(table).__name__}")
    valid = set(required) | set(optional)
    for k in table:
        if k not in valid:
            raise SpecError(f"unknown key {where}.{k}{_closest(k, valid)}; valid keys: {', '.join(sorted(valid))}")
    for k in required:
        if k not in table:
            raise SpecError(f"missing key {where}.{k}; valid keys: {', '.join(sorted(valid))}")


def _num(table, key, where, positive=True, default=None):
    v = table.get(key, default)
    if v is None:
        raise SpecError(f"missing key {where}.{key}")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"{where}.{key} = {v!r} must be a number")
    if positive and not (np.isfinite(v) and v > 0):
        raise SpecError(f"{where}.{key} = {v!r} must be finite and > 0")
    if not np.isfinite(v):
        raise SpecError(f"{where}.{key} = {v!r} must be a finite number")
    return float(v)


def _count(table, key, where, default):
    """A positive integer (a number of bins or nodes)."""
    v = table.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SpecError(f"{where}.{key} = {v!r} must be a positive integer")
    return v


def _rate(table, key, where):
    """A background rate or amplitude: a finite number >= 0."""
    v = _num(table, key, where, positive=False)
    if v < 0:
        raise SpecError(f"{where}.{key} = {v!r} must be >= 0 (a background rate or amplitude); give its size")
    return v


def _choice(table, key, where, choices, default=None):
    if not isinstance(table, dict):
        raise SpecError(f"[{where}] must be a table, got {type(table).__name__} {table!r}")
    v = table.get(key, default)
    if v not in choices:
        named = [c for c in choices if isinstance(c, str)]
        raise SpecError(f"{where}.{key} = {v!r} is not valid{_closest(str(v), named)}; use one of {', '.join(map(str, choices))}")
    return v


def expand_path(value: str, where: str, base: Path | None = None) -> Path:
    """Expand ``${CEVNSJAX_DATA}`` (and other environment variables) in a path from a spec."""
    if f"${{{ENV_VAR}}}" in value or f"${ENV_VAR}" in value:
        root = data_dir()
        if root is None:
            raise SpecError(f"{where} = {value!r} needs the published data folder {str(data_root())!r}: get it with "
                            f"`{FETCH_HINT}` or set ${ENV_VAR} to the folder holding it")
        value = value.replace(f"${{{ENV_VAR}}}", str(root)).replace(f"${ENV_VAR}", str(root))
    p = Path(os.path.expandvars(value)).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    read = _READ_PATHS.get()
    if read is not None:
        read.append(p)
    return p


_READ_PATHS: contextvars.ContextVar = contextvars.ContextVar("cevnsjax_read_paths", default=None)


@contextlib.contextmanager
def record_data_paths():
    """Collect every data path a spec names (via :func:`expand_path`) while building experiments inside the
    block: ``with record_data_paths() as paths: exp = experiment_from_spec(spec)`` (for content fingerprints)."""
    paths: list[Path] = []
    token = _READ_PATHS.set(paths)
    try:
        yield paths
    finally:
        _READ_PATHS.reset(token)


def recorded_data_paths() -> list[Path]:
    """The paths recorded so far by the innermost :func:`record_data_paths` block ([] outside one)."""
    return list(_READ_PATHS.get() or [])


def spec_path(path_or_name) -> Path:
    """The TOML file of a spec: ``path_or_name`` itself if it exists, else the preset of that name."""
    p = Path(path_or_name)
    if not p.exists():
        names = preset_names()
        if str(path_or_name) not in names:
            raise SpecError(f"{path_or_name!r} is neither a spec file nor a preset{_closest(str(path_or_name), names)}; "
                            f"presets: {', '.join(names)}")
        p = PRESET_DIR / f"{path_or_name}.toml"
    return p


def load_spec(path_or_name) -> dict:
    """Read a TOML file, or a preset by name (``cevnsjax experiments`` lists them)."""
    p = spec_path(path_or_name)
    try:
        with open(p, "rb") as fh:
            spec = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{p}: not valid TOML: {err}") from None
    spec.setdefault("_base", str(p.parent))
    return spec


def fit_priors(spec: dict) -> dict:
    """The ``[fit.priors]`` table: parameter name -> prior spec (e.g. ``k = ["uniform", 0.1, 0.3]``)."""
    fit = spec.get("fit", {})
    _check_keys(fit, "fit", (), ("priors",))
    priors = fit.get("priors", {})
    if not isinstance(priors, dict):
        raise SpecError("[fit.priors] must be a table of name = [kind, args...]")
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in priors.items()}


def preset_names() -> list[str]:
    return sorted(f.stem for f in PRESET_DIR.glob("*.toml"))


def load_preset(name: str, with_data: bool = True) -> Experiment:
    return experiment_from_spec(load_spec(name), with_data=with_data)


# ------------------------------------------------------------------------------------------ parts
def _bins(det: dict, where: str) -> np.ndarray:
    if ("edges" in det) == ("bins" in det):
        raise SpecError(f"{where}: give exactly one of edges = [...] or bins = {{start, stop, n}}")
    if "edges" in det:
        try:
            e = np.asarray(det["edges"], float)
        except (TypeError, ValueError):
            raise SpecError(f"{where}.edges = {det['edges']!r} must be a list of numbers") from None
    else:
        b = det["bins"]
        _check_keys(b, f"{where}.bins", ("start", "stop", "n"), ("spacing",))
        n = b["n"]
        if not isinstance(n, int) or n < 1:
            raise SpecError(f"{where}.bins.n = {n!r} must be a positive integer")
        sp = _choice(b, "spacing", f"{where}.bins", ("lin", "log"), "lin")
        lo, hi = _num(b, "start", f"{where}.bins", positive=False), _num(b, "stop", f"{where}.bins", positive=False)
        if not hi > lo:
            raise SpecError(f"{where}.bins: stop = {hi} must exceed start = {lo}")
        e = np.linspace(lo, hi, n + 1) if sp == "lin" else np.geomspace(lo, hi, n + 1)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise SpecError(f"{where}.edges must be >= 2 strictly increasing values")
    return e


def _source(src: dict, base: Path):
    where = "source"
    kind = _choice(src, "type", where, ("reactor", "pion_dar", "tabulated"))
    if kind == "reactor":
        _check_keys(src, where, ("type",), ("preset", "power_GW", "distance_m", "fission_fractions",
                                             "energy_per_fission", "nu_per_fission", "normalize_to_yield",
                                             "low_energy_tables", "high", "high_e_max", "capture",
                                             "total_flux_cm2_s"))
        preset = _choice(src, "preset", where, (None, "dresden_ii", "conus"), None)
        defaults = {"dresden_ii": (2.96, 10.39), "conus": (3.9, 17.1), None: (None, None)}[preset]
        power = _num(src, "power_GW", where, default=defaults[0])
        dist = _num(src, "distance_m", where, default=defaults[1])
        kw = {k: src[k] for k in ("fission_fractions", "energy_per_fission", "nu_per_fission", "normalize_to_yield")
              if k in src}
        if src.get("low_energy_tables", False):
            root = data_dir()
            if root is None:
                raise SpecError(f"source.low_energy_tables = true needs the published data folder {str(data_root())!r}: "
                                f"get it with `{FETCH_HINT}` or set ${ENV_VAR}")
            cap = _choice(src, "capture", where, ("bestiole", "curve", "none"), "bestiole")
            high = _choice(src, "high", where, ("huber_mueller", "mueller2011", "table"), "huber_mueller")
            r = Reactor.with_low_energy_tables(root, power, dist, capture=None if cap == "none" else cap, high=high,
                                               high_e_max=_num(src, "high_e_max", where, default=8.0), **kw)
        else:
            if src.get("capture", "none") != "none":
                raise SpecError("source.capture needs source.low_energy_tables = true (capture spectra are read from tables)")
            r = Reactor(power, dist, **kw)
        if "total_flux_cm2_s" in src:  # impose a published total: scale the integral of the spectra
            spectral = sum(c.total_flux() for c in r.components())
            return ScaledSource(r, _num(src, "total_flux_cm2_s", where) / spectral)
        return r
    if kind == "pion_dar":
        _check_keys(src, where, ("type",), ("preset", "nu_per_flavour_per_proton", "protons_per_second", "distance_m",
                                             "power_MW", "total_flux_cm2_s"))
        preset = _choice(src, "preset", where, (None, "coherent_csi_2017", "sns", "csns"), None)
        if preset == "coherent_csi_2017":
            return PionDAR.coherent_csi_2017()
        if preset == "sns":
            return PionDAR.sns(power_MW=_num(src, "power_MW", where, default=1.4),
                               distance_m=_num(src, "distance_m", where, default=19.3))
        if preset == "csns":
            return PionDAR.csns(distance_m=_num(src, "distance_m", where, default=10.5),
                                total_flux=_num(src, "total_flux_cm2_s", where, default=2.0e7))
        return PionDAR(_num(src, "nu_per_flavour_per_proton", where), _num(src, "protons_per_second", where),
                       _num(src, "distance_m", where))
    _check_keys(src, where, ("type", "path"), ("flavour", "antineutrino", "interpolation", "scale"))
    return TabulatedFlux.from_file(expand_path(src["path"], "source.path", base), src.get("flavour", "e"),
                                   bool(src.get("antineutrino", True)), scale=_num(src, "scale", where, default=1.0),
                                   interpolation=src.get("interpolation", "linear"))


def _element_ZA(formula: str):
    """Z and standard atomic mass of the heaviest element in the formula (Lindhard's Z, A when a spec gives
    one of them for a compound; a compound without Z, A gets :class:`PerNucleusQuenching`)."""
    els = parse_formula(formula)
    el = max(els, key=lambda e: ELEMENTS[e][0].Z)
    isos = ELEMENTS[el]
    return float(isos[0].Z), float(sum(i.abundance * i.atomic_mass_u for i in isos))


def _compound_lindhard(q: dict, model: str, formula: str):
    """A compound without an explicit Z, A: each nucleus quenched with its own Lindhard k(Z, A), eps(Z)."""
    where = "detector.quenching"
    _check_keys(q, where, ("model",), ("k", "Z", "A") if model == "lindhard" else ("k", "q", "Z", "A", "q_max"))
    per = PerNucleusQuenching.lindhard(formula)
    ks = ", ".join(f"{el}: {m.k_value:.4f}" for el, m in zip(per.elements, per.models))
    if model == "modified_lindhard" or "k" in q:
        raise SpecError(f"{where}: model = {model!r}{' with k = ' + repr(q['k']) if 'k' in q else ''} is ambiguous for "
                        f"the compound {formula!r}: each nucleus has its own Lindhard k(Z, A) ({ks}). Use model = "
                        "'lindhard' without k (each nucleus quenched with its own k), or give Z and A to quench "
                        "every nucleus as that one element")
    return per


def _quenching(q: dict, formula: str, base: Path):
    where = "detector.quenching"
    model = _choice(q, "model", where, ("lindhard", "modified_lindhard", "constant", "tabulated", "polynomial"))
    Z, A = _element_ZA(formula)
    if model in ("lindhard", "modified_lindhard") and len(parse_formula(formula)) > 1 and not {"Z", "A"} & set(q):
        return _compound_lindhard(q, model, formula)
    if model == "lindhard":
        _check_keys(q, where, ("model",), ("k", "Z", "A"))
        return Lindhard(_num(q, "Z", where, default=Z), _num(q, "A", where, default=A),
                        k=_num(q, "k", where) if "k" in q else None)
    if model == "modified_lindhard":
        _check_keys(q, where, ("model",), ("k", "q", "Z", "A", "q_max"))
        return ModifiedLindhard(_num(q, "Z", where, default=Z), _num(q, "A", where, default=A),
                                k=_num(q, "k", where, default=0.157), q=_num(q, "q", where, positive=False, default=0.0),
                                q_max=_num(q, "q_max", where, default=1.0))
    if model == "constant":
        _check_keys(q, where, ("model", "value"))
        v = _num(q, "value", where)
        if v > 1:
            raise SpecError(f"{where}.value = {v!r} must lie in (0, 1]: a quenching factor E_ee / E_R")
        return ConstantQuenching(v)
    if model == "polynomial":
        _check_keys(q, where, ("model", "coefficients"))
        c = q["coefficients"]
        if not isinstance(c, list) or not all(isinstance(x, (int, float)) and np.isfinite(x) for x in c):
            raise SpecError(f"{where}.coefficients = {c!r} must be a list of finite numbers")
        return PolynomialLightYield(*c)
    _check_keys(q, where, ("model", "path"), ("table",))

    tables = load_dresden_ii_qf(expand_path(q["path"], f"{where}.path", base))
    name = _choice(q, "table", where, tuple(tables), next(iter(tables)))
    return tables[name]


def _resolution(r: dict | None):
    if r is None:
        return None
    where = "detector.resolution"
    model = _choice(r, "model", where, ("ge", "gaussian", "poisson_pe", "gamma_pe"))
    if model == "ge":
        _check_keys(r, where, ("model",), ("sigma_noise_keV", "fano", "eps_pair_keV"))
        return GeResolution(_num(r, "sigma_noise_keV", where, default=0.0685), _num(r, "fano", where, default=0.11),
                            _num(r, "eps_pair_keV", where, default=2.96e-3))
    if model == "gaussian":
        _check_keys(r, where, ("model", "sigma0"), ("frac", "slope"))
        vals = [_num(r, k, where, False, 0.0) for k in ("sigma0", "frac", "slope")]
        if min(vals) < 0 or max(vals) == 0:
            raise SpecError(f"{where}: sigma0, frac, slope = {vals} must be >= 0 and not all zero")
        return GaussianResolution(*vals)
    if model == "poisson_pe":
        _check_keys(r, where, ("model", "light_yield"))
        return PoissonPE(_num(r, "light_yield", where))
    _check_keys(r, where, ("model",), ("a", "b"))
    return GammaPE(_num(r, "a", where, default=0.0749), _num(r, "b", where, default=9.56))


def _efficiency(e: dict | None, base: Path):
    if e is None:
        return None
    where = "detector.efficiency"
    model = _choice(e, "model", where, ("coherent_2017", "coherent_2021", "tabulated", "constant"))
    if model == "coherent_2017":
        _check_keys(e, where, ("model",), ("a", "k", "x0"))
        return Coherent2017Efficiency(**{k: _num(e, k, where, False) for k in ("a", "k", "x0") if k in e})
    if model == "coherent_2021":
        _check_keys(e, where, ("model",), ("a", "b", "c", "d", "pe_max"))
        return Coherent2021Efficiency(**{k: _num(e, k, where, False) for k in ("a", "b", "c", "d", "pe_max") if k in e})
    if model == "constant":
        _check_keys(e, where, ("model", "value"))
        v = _num(e, "value", where)
        if v > 1:
            raise SpecError(f"{where}.value = {v!r} must lie in (0, 1]: an efficiency is a probability")
        return ConstantEfficiency(v)
    _check_keys(e, where, ("model", "path"), ("below",))
    return load_efficiency_table(expand_path(e["path"], f"{where}.path", base), below=_num(e, "below", where, False, 0.0))


def _time_efficiency(e: dict | None):
    if e is None:
        return None
    where = "detector.time_efficiency"
    _choice(e, "model", where, ("coherent_2021",))
    _check_keys(e, where, ("model",), ("t0", "slope", "t_max"))
    return Coherent2021TimeEfficiency(_num(e, "t0", where, default=0.52), _num(e, "slope", where, default=0.0494),
                                      _num(e, "t_max", where, default=6.0))


def _background(b: dict, i: int):
    where = f"background[{i}]"
    kind = _choice(b, "type", where, ("flat", "exponential", "gaussian_line", "template"))
    if kind == "flat":
        _check_keys(b, where, ("type", "rate"), ("name",))
        return Flat(_rate(b, "rate", where), name=b.get("name", "flat"))
    if kind == "exponential":
        _check_keys(b, where, ("type", "rate0", "decay"), ("name",))
        return Exponential(_rate(b, "rate0", where), _num(b, "decay", where), name=b.get("name", "exponential"))
    if kind == "gaussian_line":
        _check_keys(b, where, ("type", "amplitude", "centre", "sigma"), ("name",))
        return GaussianLine(_rate(b, "amplitude", where), _num(b, "centre", where, False), _num(b, "sigma", where),
                            name=b.get("name", f"line{i}"))
    _check_keys(b, where, ("type", "name"), ("scale", "counts"))
    if "counts" not in b:
        return ("template-from-loader", b["name"], _rate(b, "scale", where) if "scale" in b else 1.0)
    try:
        counts = np.asarray(b["counts"], float)
    except (TypeError, ValueError):
        raise SpecError(f"{where}.counts = {b['counts']!r} must be a list of numbers (counts per bin)") from None
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise SpecError(f"{where}.counts must be finite and >= 0 (counts per bin)")
    return Template(_rate(b, "scale", where) if "scale" in b else 1.0, counts, name=b["name"])


_CROSS = {"helm": Helm, "klein_nystrand": KleinNystrand, "symmetrized_fermi": SymmetrizedFermi}


def experiment_from_spec(spec: dict, with_data: bool = True) -> Experiment:
    """Build and validate an :class:`Experiment` from a spec dict (as read by :func:`load_spec`)."""
    spec = dict(spec)
    base = Path(spec.pop("_base", "."))
    _check_keys(spec, "spec", ("name", "target", "exposure", "source", "detector"),
                ("description", "cross_section", "background", "data", "fit"))
    tgt = spec["target"]
    _check_keys(tgt, "target", ("formula", "mass_kg"))
    try:
        parse_formula(tgt["formula"])
    except ValueError as err:
        raise SpecError(f"target.formula: {err}") from None
    mass = _num(tgt, "mass_kg", "target")
    _check_keys(spec["exposure"], "exposure", ("live_days",))
    days = _num(spec["exposure"], "live_days", "exposure")
    for key, v, top, unit in (("target.mass_kg", mass, MAX_MASS_KG, "kg"), ("exposure.live_days", days, MAX_LIVE_DAYS, "days")):
        if v > top:
            raise SpecError(f"{key} = {v!r} is implausible (> {top:g} {unit}; larger values overflow the counts); "
                            f"give it in {unit}")
    source = _source(spec["source"], base)

    xs = spec.get("cross_section", {})
    _check_keys(xs, "cross_section", (), ("form_factor", "couplings", "kinematics", "charge_radius_correction"))
    ff = _CROSS[_choice(xs, "form_factor", "cross_section", tuple(_CROSS), "helm")]()
    try:
        model = CrossSectionModel(form_factor=ff, couplings=xs.get("couplings", "tree"),
                                  kinematics=xs.get("kinematics", "full"),
                                  charge_radius_correction=xs.get("charge_radius_correction"))
    except ValueError as err:
        raise SpecError(f"cross_section: {err}") from None

    det = spec["detector"]
    _check_keys(det, "detector", ("observable",), ("edges", "bins", "recoil_grid", "time_edges_us", "time_pdfs",
                                                   "truncate_at_zero", "quenching", "resolution", "efficiency",
                                                   "time_efficiency", "efficiency_subbins", "smearing",
                                                   "smearing_step"))
    kind = _choice(det, "observable", "detector", ("E_R_keV", "E_ee_keV", "PE"))
    edges = _bins(det, "detector")
    grid = None
    if "recoil_grid" in det:
        g = det["recoil_grid"]
        _check_keys(g, "detector.recoil_grid", ("min_keV", "max_keV"), ("n_bins", "nodes_per_bin"))
        grid = RecoilGrid(_num(g, "min_keV", "detector.recoil_grid"), _num(g, "max_keV", "detector.recoil_grid"),
                          _count(g, "n_bins", "detector.recoil_grid", 300), _count(g, "nodes_per_bin", "detector.recoil_grid", 4))
    time_pdfs = ()
    if "time_edges_us" in det:
        pdfs = det.get("time_pdfs", {})
        time_pdfs = tuple((k, load_arrival_time_pdf(expand_path(v, f"detector.time_pdfs.{k}", base))) for k, v in pdfs.items())
    sub = det.get("efficiency_subbins", 1)
    if not isinstance(sub, int) or sub < 1:
        raise SpecError(f"detector.efficiency_subbins = {sub!r} must be a positive integer (sub-bins per bin)")
    smearing = _choice(det, "smearing", "detector", SMEARING, "exact")
    step = None
    if "smearing_step" in det:
        step = _num(det, "smearing_step", "detector")
        if smearing != "grid":
            raise SpecError(f"detector.smearing_step = {det['smearing_step']!r} needs detector.smearing = \"grid\" "
                            f"(got {smearing!r}); set smearing = \"grid\" or remove smearing_step")
    if smearing == "grid" and "resolution" not in det:
        raise SpecError('detector.smearing = "grid" needs a [detector.resolution] table (the response to tabulate); '
                        'remove smearing or add a resolution model')
    observable = Observable(kind, tuple(edges), det.get("time_edges_us"), time_pdfs,
                            bool(det.get("truncate_at_zero", False)), sub, smearing, step)
    quench = _quenching(det["quenching"], tgt["formula"], base) if "quenching" in det else None
    bk = spec.get("background", [])
    if not isinstance(bk, list) or not all(isinstance(b, dict) for b in bk):
        raise SpecError("background must be a list of tables: write each as [[background]] (double brackets)")
    backgrounds = [_background(b, i) for i, b in enumerate(bk)]

    n_comp = len(source.components())
    defaults = ExperimentParams(
        physics=PhysicsParams(), flux_scale=jnp.ones(n_comp), quenching=quench,
        resolution=_resolution(det.get("resolution")), efficiency=_efficiency(det.get("efficiency"), base),
        time_efficiency=_time_efficiency(det.get("time_efficiency")),
        backgrounds=tuple(b for b in backgrounds if not isinstance(b, tuple)),
    )
    pending = [b for b in backgrounds if isinstance(b, tuple)]
    try:
        exp = Experiment(spec["name"], tgt["formula"], mass, days, source, observable, grid, defaults, model,
                         description=spec.get("description", ""))
    except ValueError as err:
        raise SpecError(str(err)) from None
    data = spec.get("data")
    if data is not None:
        _check_keys(data, "data", ("loader", "path"))
        loader = _choice(data, "loader", "data", tuple(sorted(DATA_LOADERS)))
        if with_data:
            exp = DATA_LOADERS[loader](expand_path(data["path"], "data.path", base), spec, exp, pending)
    elif pending:
        raise SpecError(f"background templates {[p[1] for p in pending]} have no counts and no [data] loader to fill them")
    return exp


import cevnsjax.io.presets  # noqa: E402,F401  (registers the data loaders)
