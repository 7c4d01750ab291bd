"""Reactor electron antineutrino sources.

Flux at distance L from a core of thermal power P (REFERENCE §5.7; JUNO/ERNIE convention)::

    dPhi/dE = P / (sum_i f_i E_f,i) * [ sum_i f_i S_i(E) + c * S_capture(E) ] / (4 pi L^2)

with f_i the fission fractions of U235, U238, Pu239, Pu241, E_f,i the energy released per fission
[MeV], S_i the per-fission spectra [nu-bar / MeV / fission], c the 238U(n,gamma) captures per fission
and S_capture the 239U -> 239Np -> 239Pu beta-decay antineutrino spectrum per capture.

Spectral models (E in MeV, values in nu-bar / MeV / fission, zero outside their support):

* :class:`HuberMueller` -- exp of a 5th-order polynomial; Huber 2011 (PRC 84, 024617) for U235,
  Pu239, Pu241, Mueller 2011 (PRC 83, 054615) for U238. Valid 2-8 MeV; default support [2, 8].
* :class:`Mueller2011` -- Mueller 2011 exp-polynomial fits for all four isotopes; same range.
* :class:`VogelEngel` -- exp of a quadratic, Vogel & Engel PRD 39, 3378 (1989); default support
  [0, 10] MeV (the range pyCEvNS normalises over; the fit itself was made above ~2 MeV).
* :class:`TabulatedSpectrum` -- any table read from a path (Daya Bay official HM tables, the
  Kopeikin-type per-isotope ``spectraMeV*.txt``, any two-column file).
* :class:`BinnedSpectrum` -- a histogram (e.g. the BESTIOLE 239U and 239Np beta spectra).
* :class:`CombinedSpectrum` -- a low-energy table below a join energy (default 2 MeV) with a
  high-energy model above it: this is how the part of the spectrum below 2 MeV enters.

The default :class:`Reactor` needs no data files: it uses the in-package Huber-Mueller fits on their
valid range 2-8 MeV, so its spectral components carry only the nu-bar above 2 MeV (about 1/4 of the
total) and no capture spectrum. The part below 2 MeV and the capture spectra come from tables read
from a path: see :meth:`Reactor.with_low_energy_tables`. ``Reactor.total_flux()`` is always the
yield-based total (TEXONO nu-bar per fission and per capture), whatever spectra are attached.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cevnsjax.physics.constants import MEV_PER_GW_S
from cevnsjax.sources.base import ContinuousComponent, Source, check_positive, geometric_factor_cm2, subintervals
from cevnsjax.sources.tabulated import TableInterpolator, read_two_column, validate_table

__all__ = [
    "ISOTOPES",
    "FISSION_FRACTIONS",
    "ENERGY_PER_FISSION",
    "NU_PER_FISSION_TEXONO",
    "SpectralModel",
    "ExpPolynomialSpectrum",
    "HuberMueller",
    "Mueller2011",
    "VogelEngel",
    "TabulatedSpectrum",
    "BinnedSpectrum",
    "CombinedSpectrum",
    "Reactor",
]

ISOTOPES = ("U235", "U238", "Pu239", "Pu241")
CAPTURE_CHANNELS = ("U239", "Np239")

#: Fission fractions (U235, U238, Pu239, Pu241). Daya Bay PRD 100, 052004 (REFERENCE §5.6);
#: TEXONO hep-ex/0605006 table (seed talk, REFERENCE §5.4).
FISSION_FRACTIONS = {
    "dayabay": {"U235": 0.564, "U238": 0.076, "Pu239": 0.304, "Pu241": 0.056},
    "texono": {"U235": 0.55, "U238": 0.07, "Pu239": 0.32, "Pu241": 0.06},
}

#: Energy released per fission [MeV] (REFERENCE §5.5).
ENERGY_PER_FISSION = {
    "ma2013": {"U235": 202.36, "U238": 205.99, "Pu239": 211.12, "Pu241": 214.26},  # Ma et al. PRC 88, 014605
    "older": {"U235": 201.7, "U238": 205.0, "Pu239": 210.0, "Pu241": 212.4},  # ERNIE Reactor_Antineutrino_Flux0.h
    "kopeikin2004": {"U235": 201.92, "U238": 205.52, "Pu239": 209.99, "Pu241": 213.60},  # Kopeikin et al. 2004
}

#: nu-bar per fission, TEXONO hep-ex/0605006 (REFERENCE §5.4).
NU_PER_FISSION_TEXONO = {"U235": 6.14, "U238": 7.08, "Pu239": 5.58, "Pu241": 6.42}
#: 238U(n,gamma) captures per fission and nu-bar per capture (239U and 239Np beta decays), TEXONO.
CAPTURES_PER_FISSION_TEXONO = 0.60
NU_PER_CAPTURE = 2.00

#: A spectrum may be normalised to its yield only if its support starts below this energy [MeV].
NORMALIZE_MAX_LOW_EDGE = 0.05

# Data-folder layout (PROVENANCE §4a-4c), relative to the published-data folder.
DAYABAY_HM_DIR = "reactor_spectra/dayabay_official_hm/reactor_antineutrino_spectra_hm.tsv"
KOPEIKIN_DIR = "reactor_spectra/kopeikin_mueller_dresden_inputs"
RITTERCAT_DIR = "reactor_spectra/compilation_rittercat"


# --------------------------------------------------------------------------- spectral models
class SpectralModel:
    """Per-fission (or per-decay) spectrum S(E) [nu-bar / MeV / event], E in MeV.

    Subclasses set ``name``, ``breakpoints`` (support edges, joins, table nodes; strictly increasing)
    and implement ``_eval`` on the support; ``__call__`` is zero outside it.
    """

    name: str = "spectrum"
    breakpoints: tuple[float, ...] = ()

    @property
    def support(self) -> tuple[float, float]:
        return float(self.breakpoints[0]), float(self.breakpoints[-1])

    def _eval(self, e: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, e) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        lo, hi = self.support
        inside = (e >= lo) & (e <= hi)
        return np.where(inside, self._eval(np.where(inside, e, lo)), 0.0)

    def integral(self, lo: float | None = None, hi: float | None = None, max_step: float = 0.25) -> float:
        """Integral over [lo, hi] (default: the support) [nu-bar / event]; Gauss-Legendre per breakpoint piece."""
        a, b = self.support
        lo = a if lo is None else max(a, float(lo))
        hi = b if hi is None else min(b, float(hi))
        if hi <= lo:
            return 0.0
        bp = [lo] + [p for p in self.breakpoints if lo < p < hi] + [hi]
        x, w = np.polynomial.legendre.leggauss(48)
        total = 0.0
        for p, q in subintervals(bp, max_step):
            e = 0.5 * (q - p) * x + 0.5 * (q + p)
            total += 0.5 * (q - p) * float(np.dot(w, self(e)))
        return total


def _support(name: str, e_min: float, e_max: float) -> tuple[float, float]:
    e_min, e_max = float(e_min), float(e_max)
    if not (math.isfinite(e_min) and math.isfinite(e_max) and 0 <= e_min < e_max):
        raise ValueError(f"{name}: support e_min={e_min!r}, e_max={e_max!r} MeV must satisfy 0 <= e_min < e_max")
    return e_min, e_max


def _isotope(isotope: str, allowed=ISOTOPES) -> str:
    if isotope not in allowed:
        raise ValueError(f"isotope={isotope!r} is not known; use one of {allowed}")
    return isotope


class ExpPolynomialSpectrum(SpectralModel):
    """S(E) = exp(sum_k a_k E^k) on [e_min, e_max], zero outside."""

    def __init__(self, coefficients, e_min: float, e_max: float, name: str = "exp-polynomial"):
        self.coefficients = tuple(float(a) for a in coefficients)
        self.name = name
        self.breakpoints = _support(name, e_min, e_max)

    def _eval(self, e):
        return np.exp(np.polynomial.polynomial.polyval(e, self.coefficients))


#: Huber PRC 84, 024617 (2011) (U235, Pu239, Pu241) and Mueller PRC 83, 054615 (2011) (U238),
#: exp-polynomial coefficients a0..a5 (REFERENCE §5.1, [V] ERNIE / JUNO code).
HUBER_MUELLER_COEFFS = {
    "U235": (4.367, -4.577, 2.100, -0.5294, 0.06186, -0.002777),
    "Pu239": (4.757, -5.392, 2.563, -0.6596, 0.07820, -0.003536),
    "Pu241": (2.990, -2.882, 1.278, -0.3343, 0.03905, -0.001754),
    "U238": (0.4833, 0.1927, -0.1283, -0.006762, 0.002233, -0.0001536),
}
#: Mueller PRC 83, 054615 (2011) Table VI, all four isotopes (REFERENCE §5.1).
MUELLER_2011_COEFFS = {
    "U235": (3.217, -3.111, 1.395, -0.3690, 0.04445, -0.002053),
    "U238": (0.4833, 0.1927, -0.1283, -0.006762, 0.002233, -0.0001536),
    "Pu239": (6.413, -7.432, 3.535, -0.8820, 0.1025, -0.004550),
    "Pu241": (3.251, -3.204, 1.428, -0.3675, 0.04254, -0.001896),
}
#: Vogel & Engel PRD 39, 3378 (1989): S = exp(a0 + a1 E + a2 E^2) (REFERENCE §5.2).
VOGEL_ENGEL_COEFFS = {
    "U235": (0.870, -0.160, -0.091),
    "Pu239": (0.896, -0.239, -0.0981),
    "U238": (0.976, -0.162, -0.0790),
    "Pu241": (0.793, -0.080, -0.1085),
}


class HuberMueller(ExpPolynomialSpectrum):
    """Huber 2011 (U235, Pu239, Pu241) / Mueller 2011 (U238) fit [nu-bar/MeV/fission].

    Valid 2-8 MeV (the range of the fit); default support is exactly that. Pass ``e_min``/``e_max``
    to extrapolate (at your own risk: the polynomial is unconstrained outside 2-8 MeV).
    """

    def __init__(self, isotope: str, e_min: float = 2.0, e_max: float = 8.0):
        self.isotope = _isotope(isotope)
        super().__init__(HUBER_MUELLER_COEFFS[isotope], e_min, e_max, name=f"HuberMueller {isotope}")


class Mueller2011(ExpPolynomialSpectrum):
    """Mueller 2011 (PRC 83, 054615) exp-polynomial fit for all four isotopes; valid 2-8 MeV."""

    def __init__(self, isotope: str, e_min: float = 2.0, e_max: float = 8.0):
        self.isotope = _isotope(isotope)
        super().__init__(MUELLER_2011_COEFFS[isotope], e_min, e_max, name=f"Mueller2011 {isotope}")


class VogelEngel(ExpPolynomialSpectrum):
    """Vogel & Engel (PRD 39, 3378, 1989) exp-quadratic [nu-bar/MeV/fission]; default support [0, 10] MeV."""

    def __init__(self, isotope: str, e_min: float = 0.0, e_max: float = 10.0):
        self.isotope = _isotope(isotope)
        super().__init__(VOGEL_ENGEL_COEFFS[isotope], e_min, e_max, name=f"VogelEngel {isotope}")


class TabulatedSpectrum(SpectralModel):
    """A spectrum interpolated from a table (zero outside it); nodes are breakpoints.

    ``interpolation`` is "linear" or "log" (ln S linear in E). Values in nu-bar / MeV / event.
    """

    def __init__(self, energies, values, *, interpolation: str = "linear", name: str = "table", scale: float = 1.0):
        x, y = validate_table(energies, values, y_name="S", source=f"TabulatedSpectrum {name!r}")
        self.name = name
        self.energies = x
        self.values = y * float(scale)
        self._interp = TableInterpolator(x, self.values, interpolation)
        self.breakpoints = tuple(float(v) for v in x)

    def _eval(self, e):
        return self._interp(e)

    def integral(self, lo=None, hi=None, max_step: float = 0.25) -> float:
        if lo is None and hi is None:
            return self._interp.integral()
        return super().integral(lo, hi, max_step)

    @classmethod
    def from_file(cls, path, *, interpolation: str = "linear", name: str | None = None, sort: bool = False, scale=1.0):
        """Any two-column text file (E [MeV], S [nu-bar/MeV/event]); see :func:`read_two_column`."""
        x, y = read_two_column(path, x_name="E_MeV", y_name="S", sort=sort)
        return cls(x, y, interpolation=interpolation, name=name or Path(path).name, scale=scale)

    @classmethod
    def from_dayabay(cls, path, isotope: str | None = None):
        """Daya Bay official Huber-Mueller table (``reactor_antineutrino_spectra_hm_<iso>.tsv.bz2``).

        ``path`` is the file, or the folder holding the four files (then ``isotope`` is required).
        1.75-13 MeV on a 50 keV mesh; exponential ("log") interpolation as in the release.
        """
        path = Path(path)
        if path.is_dir():
            if isotope is None:
                raise ValueError(f"{path} is a folder; give isotope= one of {ISOTOPES} or the file itself")
            path = path / f"reactor_antineutrino_spectra_hm_{_isotope(isotope)}.tsv.bz2"
        return cls.from_file(path, interpolation="log", name=f"DayaBayHM {isotope or path.name}")

    @classmethod
    def from_kopeikin_table(cls, path, isotope: str | None = None):
        """Kopeikin-type per-isotope table ``spectraMeV<iso>.txt`` (Dresden-II inputs, PROVENANCE §4b).

        0.0078-8 MeV; below 2 MeV Kopeikin-style low-energy values, from 2 MeV Mueller 2011 table.
        ``path`` is the file or its folder (then ``isotope`` is required). Linear interpolation.
        """
        path = Path(path)
        if path.is_dir():
            if isotope is None:
                raise ValueError(f"{path} is a folder; give isotope= one of {ISOTOPES} or the file itself")
            path = path / f"spectraMeV{_isotope(isotope)}.txt"
        return cls.from_file(path, interpolation="linear", name=f"Kopeikin {isotope or path.name}")


class BinnedSpectrum(SpectralModel):
    """A histogram: S(E) = values[k] for edges[k] <= E < edges[k+1] (piecewise constant).

    The integral is exactly sum(values * widths), so per-decay normalised histograms stay normalised.
    """

    def __init__(self, edges, values, *, name: str = "histogram"):
        edges = np.asarray(edges, dtype=float)
        values = np.asarray(values, dtype=float)
        if edges.ndim != 1 or values.ndim != 1 or edges.size != values.size + 1:
            raise ValueError(f"{name}: need len(edges) == len(values) + 1, got {edges.size} and {values.size}")
        validate_table(edges, np.zeros_like(edges), x_name="bin edge", source=name)
        validate_table(edges[:-1], values, x_name="bin edge", y_name="S", source=name)
        self.name = name
        self.edges = edges
        self.values = values
        self.breakpoints = tuple(float(v) for v in edges)

    def _eval(self, e):
        k = np.clip(np.searchsorted(self.edges, e, side="right") - 1, 0, self.values.size - 1)
        return self.values[k]

    def integral(self, lo=None, hi=None, max_step: float = 0.25) -> float:
        if lo is None and hi is None:
            return float(np.sum(self.values * np.diff(self.edges)))
        return super().integral(lo, hi, max_step)

    @classmethod
    def from_bestiole(cls, path, name: str | None = None, rtol: float = 1e-6):
        """BESTIOLE summation spectrum (arXiv:2304.14992 ancillary, RitterCat copy): bin centres, value.

        Bins are 25 keV wide; edges are centres -/+ half the (uniform) spacing. The first bin starts
        at 0. Units as in the file (per decay for ``bestiole_u239.txt`` / ``bestiole_np239.txt``).
        """
        c, y = read_two_column(path, x_name="E_MeV (bin centre)", y_name="S")
        d = np.diff(c)
        if not np.allclose(d, d[0], rtol=rtol, atol=1e-9):
            raise ValueError(f"{path}: bin centres are not uniformly spaced (spacing {d.min()}..{d.max()} MeV); "
                             f"a BESTIOLE file has 25 keV bins -- give edges explicitly with BinnedSpectrum(...)")
        w = float(np.mean(d))
        edges = np.concatenate([c - 0.5 * w, [c[-1] + 0.5 * w]])
        edges[0] = max(edges[0], 0.0)
        if abs(edges[0]) < 1e-9:
            edges[0] = 0.0
        return cls(edges, y, name=name or f"BESTIOLE {Path(path).stem}")


class CombinedSpectrum(SpectralModel):
    """``low`` below ``join`` MeV, ``high`` at and above it (default join 2 MeV).

    ``low`` must cover ``join`` (its support reaches it) and ``high`` must start at or below it.
    The join is a breakpoint, so a step there is integrated exactly.
    """

    def __init__(self, low: SpectralModel, high: SpectralModel, join: float = 2.0, name: str | None = None):
        join = check_positive("join", join, "MeV", "give the energy where the low-energy table hands over")
        lo_a, lo_b = low.support
        hi_a, hi_b = high.support
        if not lo_a < join <= lo_b:
            raise ValueError(
                f"CombinedSpectrum: join={join} MeV is outside the low-energy spectrum {low.name!r} "
                f"support [{lo_a}, {lo_b}] MeV; choose a join inside it"
            )
        if not hi_a <= join < hi_b:
            raise ValueError(
                f"CombinedSpectrum: join={join} MeV is outside the high-energy model {high.name!r} "
                f"support [{hi_a}, {hi_b}] MeV; choose a join at or above {hi_a} MeV"
            )
        self.low, self.high, self.join = low, high, join
        self.name = name or f"{low.name} < {join:g} MeV <= {high.name}"
        self.breakpoints = tuple(
            [p for p in low.breakpoints if p < join] + [join] + [p for p in high.breakpoints if p > join]
        )

    def _eval(self, e):
        return np.where(e < self.join, self.low(e), self.high(e))


def _normalised_shape(model: SpectralModel, integral: float):
    return lambda e: model(e) / integral


# --------------------------------------------------------------------------- reactor
def _fractions(value) -> dict[str, float]:
    if isinstance(value, str):
        if value not in FISSION_FRACTIONS:
            raise ValueError(f"fission_fractions={value!r} is not a preset; use one of {tuple(FISSION_FRACTIONS)} or a dict")
        value = FISSION_FRACTIONS[value]
    out = _isotope_dict("fission_fractions", value, "fraction", allow_zero=True)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-3:
        raise ValueError(
            f"fission_fractions={value!r} sum to {total:.6g}, not 1 (tolerance 1e-3); rescale them so they sum to 1"
        )
    return out


def _isotope_dict(field: str, value, what: str, allow_zero: bool, keys=ISOTOPES) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}={value!r} must be a dict isotope -> {what} with isotopes from {keys}")
    out = {}
    for k, v in value.items():
        if k not in keys:
            raise ValueError(f"{field}: unknown isotope {k!r}; use names from {keys} (exact spelling)")
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{field}[{k!r}]={v!r} is not a number; give a {what}") from None
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            raise ValueError(f"{field}[{k!r}]={v!r} must be finite and {'>=' if allow_zero else '>'} 0; give a valid {what}")
        out[k] = v
    return out


def _nonnegative(name: str, value, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; give a value >= 0 {unit}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}={value!r} {unit} must be finite and >= 0")
    return v


class Reactor(Source):
    """A reactor core seen at ``distance_m``: electron antineutrinos from fission and 238U(n,gamma).

    Parameters: ``power_gw`` thermal power [GW]; ``distance_m`` [m]; ``fission_fractions`` (preset
    name ``"dayabay"``/``"texono"`` or dict, summing to 1 within 1e-3; missing isotopes count as 0);
    ``energy_per_fission`` [MeV] (preset ``"ma2013"``/``"older"``/``"kopeikin2004"`` or dict);
    ``nu_per_fission`` (dict, default TEXONO 6.14/7.08/5.58/6.42); ``captures_per_fission`` (0.60)
    and ``nu_per_capture`` (2.00); ``spectra`` (dict isotope -> :class:`SpectralModel`, per fission;
    default :class:`HuberMueller` on 2-8 MeV); ``capture_spectra`` (dict ``{"U239": m, "Np239": m}``
    or ``{"capture": m}``, shapes: each is normalised to unit area and weighted so the capture
    channel carries ``captures_per_fission * nu_per_capture`` nu-bar per fission; default none);
    ``normalize_to_yield`` rescales each fission spectrum to integrate to its ``nu_per_fission``
    (allowed only for spectra whose support starts below 0.05 MeV).

    Components: one per fission isotope with f_i > 0 (``"U235"``, ``"U238"``, ``"Pu239"``,
    ``"Pu241"``) and one per capture spectrum, all nu-bar_e (flavour 0, antineutrino=True), density in
    cm^-2 s^-1 MeV^-1.
    """

    def __init__(
        self,
        power_gw: float,
        distance_m: float,
        *,
        fission_fractions="dayabay",
        energy_per_fission="ma2013",
        nu_per_fission: Mapping[str, float] | None = None,
        captures_per_fission: float = CAPTURES_PER_FISSION_TEXONO,
        nu_per_capture: float = NU_PER_CAPTURE,
        spectra: Mapping[str, SpectralModel] | None = None,
        capture_spectra: Mapping[str, SpectralModel] | None = None,
        normalize_to_yield: bool = False,
        max_step: float = 0.5,
    ):
        self.power_gw = check_positive("power_gw", power_gw, "GW", "give the thermal power in GW")
        self.distance_m = check_positive("distance_m", distance_m, "m", "give the core-detector distance in metres")
        self.fission_fractions = _fractions(fission_fractions)
        active = [k for k in ISOTOPES if self.fission_fractions.get(k, 0.0) > 0]
        if isinstance(energy_per_fission, str):
            if energy_per_fission not in ENERGY_PER_FISSION:
                raise ValueError(
                    f"energy_per_fission={energy_per_fission!r} is not a preset; use one of "
                    f"{tuple(ENERGY_PER_FISSION)} or a dict isotope -> MeV"
                )
            energy_per_fission = ENERGY_PER_FISSION[energy_per_fission]
        self.energy_per_fission = _isotope_dict("energy_per_fission", energy_per_fission, "energy in MeV", False)
        self.nu_per_fission = _isotope_dict(
            "nu_per_fission", NU_PER_FISSION_TEXONO if nu_per_fission is None else nu_per_fission, "nu-bar yield", True
        )
        for field, d in (("energy_per_fission", self.energy_per_fission), ("nu_per_fission", self.nu_per_fission)):
            missing = [k for k in active if k not in d]
            if missing:
                raise ValueError(f"{field} lacks {missing}, which have non-zero fission fractions; add them")
        self.captures_per_fission = _nonnegative("captures_per_fission", captures_per_fission, "captures per fission")
        self.nu_per_capture = _nonnegative("nu_per_capture", nu_per_capture, "nu-bar per capture")

        spectra = {k: HuberMueller(k) for k in active} if spectra is None else dict(spectra)
        for k, m in spectra.items():
            _isotope(k)
            if not isinstance(m, SpectralModel):
                raise ValueError(f"spectra[{k!r}]={m!r} is not a SpectralModel; use HuberMueller({k!r}) or similar")
        missing = [k for k in active if k not in spectra]
        if missing:
            raise ValueError(f"spectra lacks {missing}, which have non-zero fission fractions; add a model for each")
        self.spectra = {k: spectra[k] for k in active}

        capture_spectra = {} if capture_spectra is None else dict(capture_spectra)
        for k, m in capture_spectra.items():
            if k not in CAPTURE_CHANNELS + ("capture",):
                raise ValueError(f"capture_spectra: unknown channel {k!r}; use 'U239' and 'Np239', or 'capture'")
            if not isinstance(m, SpectralModel):
                raise ValueError(f"capture_spectra[{k!r}]={m!r} is not a SpectralModel")
        if "capture" in capture_spectra and len(capture_spectra) > 1:
            raise ValueError("capture_spectra: give either {'capture': m} or {'U239': m, 'Np239': m}, not both")
        self.capture_spectra = capture_spectra

        self.normalize_to_yield = bool(normalize_to_yield)
        if self.normalize_to_yield:
            for k, m in self.spectra.items():
                if m.support[0] > NORMALIZE_MAX_LOW_EDGE:
                    raise ValueError(
                        f"normalize_to_yield=True but spectra[{k!r}] ({m.name}) starts at {m.support[0]} MeV; "
                        f"its yield {self.nu_per_fission[k]} nu/fission counts nu-bar down to ~0 MeV -- use a "
                        f"spectrum covering E < {NORMALIZE_MAX_LOW_EDGE} MeV (e.g. Reactor.with_low_energy_tables) "
                        f"or normalize_to_yield=False"
                    )
        self.max_step = float(max_step)

    # ---- presets
    @classmethod
    def dresden_ii(cls, **kwargs) -> Reactor:
        """Dresden-II: 2.96 GW thermal at 10.39 m (Colaresi et al. PRL 129, 211802); other defaults as Reactor."""
        return cls(2.96, 10.39, **kwargs)

    @classmethod
    def conus(cls, **kwargs) -> Reactor:
        """Brokdorf/CONUS: 3.9 GW thermal at 17.1 m; other defaults as Reactor."""
        return cls(3.9, 17.1, **kwargs)

    @classmethod
    def with_low_energy_tables(
        cls,
        data_dir,
        power_gw: float,
        distance_m: float,
        *,
        join: float = 2.0,
        high: str = "huber_mueller",
        high_e_max: float = 8.0,
        capture: str | None = "bestiole",
        **kwargs,
    ) -> Reactor:
        """Reactor whose spectra cover ~0-8 MeV, read from the published-data folder ``data_dir``.

        Below ``join`` MeV: the Kopeikin-type per-isotope tables
        ``reactor_spectra/kopeikin_mueller_dresden_inputs/spectraMeV<iso>.txt`` (PROVENANCE §4b);
        from ``join`` up to ``high_e_max``: ``high`` = ``"huber_mueller"`` (default),
        ``"mueller2011"`` or ``"table"`` (the same Kopeikin file, whose values >= 2 MeV are Mueller
        2011). Capture: ``"bestiole"`` (239U and 239Np per-decay histograms,
        ``compilation_rittercat/bestiole_{u239,np239}.txt``), ``"curve"`` (the digitised
        ``spectraMeVU238Ncapture.txt``, shape only, sorted) or ``None``. Other keywords go to
        :class:`Reactor` (e.g. ``normalize_to_yield=True``).
        """
        root = Path(data_dir)
        kop = root / KOPEIKIN_DIR
        spectra = {}
        for iso in ISOTOPES:
            table = TabulatedSpectrum.from_kopeikin_table(kop, iso)
            if high == "huber_mueller":
                hi = HuberMueller(iso, e_min=min(join, 2.0), e_max=high_e_max)
            elif high == "mueller2011":
                hi = Mueller2011(iso, e_min=min(join, 2.0), e_max=high_e_max)
            elif high == "table":
                hi = table
            else:
                raise ValueError(f"high={high!r} is not valid; use 'huber_mueller', 'mueller2011' or 'table'")
            spectra[iso] = CombinedSpectrum(table, hi, join=join, name=f"{iso}: Kopeikin < {join:g} MeV, {high}")
        if capture == "bestiole":
            rc = root / RITTERCAT_DIR
            capture_spectra = {
                "U239": BinnedSpectrum.from_bestiole(rc / "bestiole_u239.txt", name="BESTIOLE 239U"),
                "Np239": BinnedSpectrum.from_bestiole(rc / "bestiole_np239.txt", name="BESTIOLE 239Np"),
            }
        elif capture == "curve":
            capture_spectra = {
                "capture": TabulatedSpectrum.from_file(
                    kop / "spectraMeVU238Ncapture.txt", sort=True, name="238U(n,g) digitised curve"
                )
            }
        elif capture is None:
            capture_spectra = None
        else:
            raise ValueError(f"capture={capture!r} is not valid; use 'bestiole', 'curve' or None")
        user_spectra = kwargs.pop("spectra", None)
        return cls(power_gw, distance_m, spectra=user_spectra or spectra, capture_spectra=capture_spectra, **kwargs)

    # ---- yields and normalisation
    @property
    def mean_energy_per_fission(self) -> float:
        """sum_i f_i E_f,i [MeV]."""
        return float(sum(f * self.energy_per_fission[k] for k, f in self.fission_fractions.items() if f > 0))

    def fissions_per_second(self) -> float:
        """P / sum_i f_i E_f,i [fissions / s]."""
        return self.power_gw * MEV_PER_GW_S / self.mean_energy_per_fission

    def nu_per_fission_total(self, include_capture: bool = True) -> float:
        """sum_i f_i n_i (+ c * nu_per_capture) [nu-bar / fission]."""
        n = sum(f * self.nu_per_fission[k] for k, f in self.fission_fractions.items() if f > 0)
        if include_capture:
            n += self.captures_per_fission * self.nu_per_capture
        return float(n)

    def total_flux(self, include_capture: bool = True) -> float:
        """Yield-based total flux P/(sum f E_f) * (sum f_i n_i + c nu_c) / (4 pi L^2) [cm^-2 s^-1].

        Independent of the attached spectra; for the integral of the spectral components use
        :meth:`spectral_flux`.
        """
        return self.fissions_per_second() * self.nu_per_fission_total(include_capture) * geometric_factor_cm2(
            self.distance_m
        )

    def spectral_flux(self) -> float:
        """Sum of the integrals of the spectral components [cm^-2 s^-1]."""
        return float(sum(c.total_flux() for c in self.components()))

    def yield_table(self) -> list[dict]:
        """TEXONO-style table: per channel ``rate_per_fission`` (f_i, or captures per fission),
        ``nu_per_event`` and ``nu_per_fission`` = product; a final ``"total"`` row."""
        rows = [
            {
                "channel": k,
                "rate_per_fission": f,
                "nu_per_event": self.nu_per_fission[k],
                "nu_per_fission": f * self.nu_per_fission[k],
            }
            for k, f in self.fission_fractions.items()
            if f > 0
        ]
        rows.sort(key=lambda r: ISOTOPES.index(r["channel"]))
        rows.append(
            {
                "channel": "238U(n,gamma)",
                "rate_per_fission": self.captures_per_fission,
                "nu_per_event": self.nu_per_capture,
                "nu_per_fission": self.captures_per_fission * self.nu_per_capture,
            }
        )
        rows.append(
            {"channel": "total", "rate_per_fission": None, "nu_per_event": None,
             "nu_per_fission": float(sum(r["nu_per_fission"] for r in rows))}
        )
        return rows

    # ---- components
    def components(self) -> tuple[ContinuousComponent, ...]:
        pref = self.fissions_per_second() * geometric_factor_cm2(self.distance_m)  # fissions s^-1 cm^-2
        out = []
        for k, model in self.spectra.items():
            scale = pref * self.fission_fractions[k]
            if self.normalize_to_yield:
                area = model.integral()
                if not area > 0:
                    raise ValueError(f"spectra[{k!r}] ({model.name}) integrates to {area}; cannot normalise to its yield")
                scale *= self.nu_per_fission[k] / area
            out.append(self._component(k, model, scale))
        if self.capture_spectra:
            per_channel = self.captures_per_fission * self.nu_per_capture / len(self.capture_spectra)
            for k, model in self.capture_spectra.items():
                area = model.integral()
                if not area > 0:
                    raise ValueError(f"capture_spectra[{k!r}] ({model.name}) integrates to {area}; give a non-zero shape")
                out.append(self._component(k, model, pref * per_channel / area))
        return tuple(out)

    def _component(self, name: str, model: SpectralModel, scale: float) -> ContinuousComponent:
        def density(e, _m=model, _s=scale):
            return _s * _m(e)

        return ContinuousComponent(
            name=name,
            flavour=0,
            antineutrino=True,
            density=density,
            breakpoints=tuple(model.breakpoints),
            max_step=self.max_step,
        )
