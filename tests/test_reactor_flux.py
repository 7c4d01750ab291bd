"""Reactor antineutrino source: yields, normalisation, spectral models and the published tables.

Numbers come from physics/REFERENCE.md §5 and data/PROVENANCE.md §4 (file values); each assert says
why its tolerance is what it is.
"""

import math

import numpy as np
import pytest
from scipy.integrate import quad

from cevnsjax.sources.reactor import (
    ISOTOPES,
    BinnedSpectrum,
    CombinedSpectrum,
    HuberMueller,
    Mueller2011,
    Reactor,
    TabulatedSpectrum,
    VogelEngel,
)

DB_DIR = "reactor_spectra/dayabay_official_hm/reactor_antineutrino_spectra_hm.tsv"
KOP_DIR = "reactor_spectra/kopeikin_mueller_dresden_inputs"
RC_DIR = "reactor_spectra/compilation_rittercat"


# ----------------------------------------------------------------------------- yields and totals
def test_dresden_ii_total_flux():
    r = Reactor.dresden_ii()  # 2.96 GW, 10.39 m, DYB fractions, Ma-2013 E_f, TEXONO yields
    # REFERENCE §5.7 quotes 4 significant digits, so rel 1e-3 is the precision of the benchmark.
    assert r.mean_energy_per_fission == pytest.approx(205.965, abs=5e-4)  # quoted as 205.965 (3 decimals)
    assert r.mean_energy_per_fission == pytest.approx(205.96532, rel=1e-13)  # exact weighted sum
    assert r.nu_per_fission_total(include_capture=False) == pytest.approx(6.0569, rel=1e-4)
    assert r.nu_per_fission_total() == pytest.approx(7.2569, rel=1e-4)
    assert r.total_flux() == pytest.approx(4.798e13, rel=1e-3)
    assert r.total_flux(include_capture=False) == pytest.approx(4.005e13, rel=1e-3)
    # fissions/s = P/<E_f>: exact arithmetic, checked to rounding.
    assert r.fissions_per_second() == pytest.approx(2.96 * 6.241509074e21 / 205.96532, rel=1e-12)


def test_conus_and_distance_scaling():
    # REFERENCE §5.7: 3.9 GW at 17.1 m -> 2.33e13 (3 digits quoted -> rel 2e-3); at 20 m 1.706e13.
    assert Reactor.conus().total_flux() == pytest.approx(2.33e13, rel=2e-3)
    assert Reactor(3.9, 20.0).total_flux() == pytest.approx(1.706e13, rel=1e-3)
    # inverse-square law and linearity in power: exact up to rounding.
    assert Reactor(1.0, 10.0).total_flux() / Reactor(2.0, 20.0).total_flux() == pytest.approx(2.0, rel=1e-14)


def test_texono_yield_table():
    rows = {r["channel"]: r for r in Reactor(1.0, 10.0, fission_fractions="texono").yield_table()}
    # TEXONO table (seed talk) shows nu/fission to 2 significant digits: compare rounded values.
    expected = {"U235": 3.4, "U238": 0.5, "Pu239": 1.8, "Pu241": 0.4, "238U(n,gamma)": 1.2}
    for ch, v in expected.items():
        assert round(rows[ch]["nu_per_fission"], 1) == v, ch
    assert rows["U235"]["nu_per_fission"] == pytest.approx(0.55 * 6.14, rel=1e-14)  # product, exact
    assert rows["238U(n,gamma)"]["rate_per_fission"] == 0.60 and rows["238U(n,gamma)"]["nu_per_event"] == 2.00
    assert rows["total"]["nu_per_fission"] == pytest.approx(7.2434, rel=1e-12)  # 3.377+0.4956+1.7856+0.3852+1.2


def test_presets_of_energy_per_fission():
    r = Reactor(1.0, 10.0, energy_per_fission="kopeikin2004", fission_fractions="texono")
    e = 0.55 * 201.92 + 0.07 * 205.52 + 0.32 * 209.99 + 0.06 * 213.60
    assert r.mean_energy_per_fission == pytest.approx(e, rel=1e-14)  # plain weighted sum
    assert Reactor(1.0, 10.0, energy_per_fission="older").energy_per_fission["Pu241"] == 212.4


# ----------------------------------------------------------------------------- in-package models
HM_BENCH = {  # REFERENCE §5.1 benchmark table [C]: S(2), S(3), S(4), S(6), S(8), int_2^8
    "U235": (1.3214, 0.65577, 0.29227, 0.038052, 0.0014737, 1.6872),
    "Pu239": (1.0901, 0.50346, 0.19808, 0.019267, 0.00048924, 1.2624),
    "Pu241": (1.2615, 0.64193, 0.27679, 0.029214, 0.00094732, 1.6146),
    "U238": (1.3941, 0.87606, 0.44171, 0.06455, 0.0039453, 2.2445),
}


@pytest.mark.parametrize("iso", ISOTOPES)
def test_huber_mueller_benchmarks(iso):
    m = HuberMueller(iso)
    bench = HM_BENCH[iso]
    # Benchmarks are given to 5 significant digits: rel 1e-4 (half a unit in the 5th digit ~ 5e-5..5e-4).
    np.testing.assert_allclose(m(np.array([2.0, 3.0, 4.0, 6.0, 8.0])), bench[:5], rtol=1e-4)
    assert m.integral() == pytest.approx(bench[5], rel=1e-4)
    # independent recomputation of the integral with adaptive quadrature (agrees to ~1e-13).
    ref = quad(lambda e: math.exp(sum(a * e**k for k, a in enumerate(m.coefficients))), 2.0, 8.0, epsabs=0, epsrel=1e-13)[0]
    assert m.integral() == pytest.approx(ref, rel=1e-12)
    assert m.support == (2.0, 8.0)  # default support = the fit's validity range
    np.testing.assert_array_equal(m(np.array([1.99, 8.01])), 0.0)
    assert HuberMueller(iso, e_min=1.8, e_max=10.0)(1.9) > 0  # extrapolation only on request


def test_mueller2011_u235_differs_from_huber_but_u238_is_same():
    # Same U238 coefficients in both sets (REFERENCE §5.1): identical values.
    np.testing.assert_array_equal(Mueller2011("U238")(np.linspace(2, 8, 7)), HuberMueller("U238")(np.linspace(2, 8, 7)))
    # Mueller U235 at 2 MeV = exp(poly) recomputed by hand.
    a = (3.217, -3.111, 1.395, -0.3690, 0.04445, -0.002053)
    assert Mueller2011("U235")(2.0) == pytest.approx(math.exp(sum(c * 2.0**k for k, c in enumerate(a))), rel=1e-14)


@pytest.mark.parametrize("iso,ref", [("U235", 5.3236), ("Pu239", 4.7265), ("U238", 6.2154), ("Pu241", 5.2115)])
def test_vogel_engel_integrals(iso, ref):
    m = VogelEngel(iso)
    assert m.integral() == pytest.approx(ref, rel=1e-4)  # REFERENCE §5.2, 5 digits quoted
    assert m.integral() == pytest.approx(quad(m, 0.0, 10.0, epsabs=0, epsrel=1e-13)[0], rel=1e-12)
    if iso == "U235":  # pyCEvNS normalisation constant (REFERENCE §5.2 [V]), full precision
        assert m.integral() == pytest.approx(5.323608902707208, rel=1e-12)


def test_default_reactor_components_cover_only_2_to_8_mev():
    r = Reactor.dresden_ii()
    comps = r.components()
    assert [c.name for c in comps] == ["U235", "U238", "Pu239", "Pu241"]  # no capture spectrum without data
    assert all(c.flavour == 0 and c.antineutrino for c in comps)
    # density = P/(sum f E_f) * f_i S_i(E) / (4 pi L^2): exact formula, rounding only.
    geo = 1.0 / (4 * math.pi * 1039.0**2)
    assert comps[0].density(np.array([3.0]))[0] == pytest.approx(
        r.fissions_per_second() * 0.564 * HuberMueller("U235")(3.0) * geo, rel=1e-13
    )
    # components integrate to sum f_i int_2^8 S_i (Gauss-Legendre of a smooth exp: ~1e-14).
    per_fission = sum(f * HM_BENCH[k][5] for k, f in r.fission_fractions.items())
    assert r.spectral_flux() == pytest.approx(r.fissions_per_second() * per_fission * geo, rel=2e-4)  # bench 5 digits
    assert r.spectral_flux() / r.total_flux() == pytest.approx(0.22, abs=0.01)  # only ~1/4 of nu-bar is above 2 MeV


def test_combined_spectrum_join():
    low = VogelEngel("U235", 0.0, 3.0)
    c = CombinedSpectrum(low, HuberMueller("U235"), join=2.0)
    assert c(1.999) == low(1.999) and c(2.0) == HuberMueller("U235")(2.0)  # high model from the join on
    assert 2.0 in c.breakpoints and c.support == (0.0, 8.0)
    assert c.integral() == pytest.approx(low.integral(0, 2.0) + HuberMueller("U235").integral(), rel=1e-13)
    with pytest.raises(ValueError, match="join=1.5 MeV is outside the high-energy model"):
        CombinedSpectrum(low, HuberMueller("U235"), join=1.5)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,needles",
    [
        (dict(power_gw=0.0), ["power_gw=0.0", "> 0"]),
        (dict(power_gw=-1.0), ["power_gw=-1.0"]),
        (dict(distance_m=0), ["distance_m=0"]),
        (dict(distance_m=float("nan")), ["distance_m=nan"]),
        (dict(fission_fractions={"U235": 0.5, "U238": 0.1, "Pu239": 0.3, "Pu241": 0.05}), ["sum to 0.95", "rescale"]),
        (dict(fission_fractions={"U235": 0.9, "U233": 0.1}), ["unknown isotope 'U233'", "U235"]),
        (dict(fission_fractions="candu"), ["fission_fractions='candu'", "dayabay"]),
        (dict(nu_per_fission={"U235": -6.14, "U238": 7.08, "Pu239": 5.58, "Pu241": 6.42}), ["nu_per_fission['U235']=-6.14"]),
        (dict(captures_per_fission=-0.6), ["captures_per_fission=-0.6", ">= 0"]),
        (dict(nu_per_capture=float("inf")), ["nu_per_capture=inf"]),
        (dict(energy_per_fission={"U235": 202.0}), ["energy_per_fission lacks", "U238"]),
        (dict(energy_per_fission="ma2014"), ["energy_per_fission='ma2014'", "ma2013"]),
        (dict(normalize_to_yield=True), ["normalize_to_yield=True", "starts at 2.0 MeV", "with_low_energy_tables"]),
        (dict(capture_spectra={"Pu240": VogelEngel("U235")}), ["unknown channel 'Pu240'"]),
    ],
)
def test_bad_reactor_input(kwargs, needles):
    args = dict(power_gw=2.96, distance_m=10.39)
    args.update(kwargs)
    p, d = args.pop("power_gw"), args.pop("distance_m")
    with pytest.raises(ValueError) as info:
        Reactor(p, d, **args)
    for n in needles:
        assert n in str(info.value), (n, str(info.value))


def test_fractions_within_tolerance_and_missing_isotopes():
    Reactor(1.0, 1.0, fission_fractions={"U235": 0.5645, "U238": 0.076, "Pu239": 0.304, "Pu241": 0.056})  # 1.0005
    r = Reactor(1.0, 1.0, fission_fractions={"U235": 1.0})  # research reactor: other isotopes count as 0
    assert r.component_names == ("U235",)
    assert r.nu_per_fission_total(include_capture=False) == 6.14


def test_vogel_engel_normalised_to_yield():
    # VE covers [0, 10] MeV, so normalisation is allowed; components then carry exactly the yields.
    r = Reactor.dresden_ii(spectra={k: VogelEngel(k) for k in ISOTOPES}, normalize_to_yield=True)
    assert r.spectral_flux() == pytest.approx(r.total_flux(include_capture=False), rel=1e-12)


# ----------------------------------------------------------------------------- published tables
def test_dayabay_hm_table(data_dir):
    folder = data_dir / DB_DIR
    u235 = TabulatedSpectrum.from_dayabay(folder, "U235")
    assert u235.support == (1.75, 13.0) and len(u235.energies) == 226  # 1.75-13 MeV, 50 keV mesh (PROVENANCE §4a)
    assert u235(2.0) == pytest.approx(1.3166, rel=1e-12)  # file value at a node (PROVENANCE §4a)
    assert TabulatedSpectrum.from_dayabay(folder, "U238")(2.0) == pytest.approx(1.48, rel=3e-3)  # "1.48" quoted
    # The fit vs Huber's own table at 2 MeV: 1.3214 vs 1.3166, 0.36% (REFERENCE §5.1).
    assert u235(2.0) / HuberMueller("U235")(2.0) - 1 == pytest.approx(-0.0036, abs=2e-4)
    # Table vs fit, integrated over 2-8 MeV: measured differences 0.07% (U235), 0.35% (Pu239),
    # 0.33% (Pu241), 1.01% (U238, Mueller table vs Mueller fit) -> the ~1% expected of a 6-parameter
    # fit to a binned table; assert 1.2%.
    for iso in ISOTOPES:
        t = TabulatedSpectrum.from_dayabay(folder, iso)
        assert t.integral(2.0, 8.0) / HuberMueller(iso).integral() == pytest.approx(1.0, abs=0.012), iso
    # Pointwise the tabulated U235 values scatter about the smooth fit: measured max 2.85% on 2-6 MeV,
    # 4.4% on 2-7.5 MeV (near 7 MeV) and 9.7% at 8 MeV where the fit's tail departs. So "~1%" holds
    # for integrals, not point by point; assert the measured bounds with a little margin.
    ratio = lambda e: np.abs(u235(e) / HuberMueller("U235")(e) - 1)  # noqa: E731
    assert np.max(ratio(np.arange(2.0, 6.001, 0.05))) < 0.03
    assert np.max(ratio(np.arange(2.0, 7.501, 0.05))) < 0.045


def test_kopeikin_per_isotope_tables(data_dir):
    folder = data_dir / KOP_DIR
    at2 = {"U235": 1.31, "U238": 1.48, "Pu239": 1.13, "Pu241": 1.27}  # file values at 2.0 MeV (PROVENANCE §4b)
    for iso, v in at2.items():
        t = TabulatedSpectrum.from_kopeikin_table(folder, iso)
        assert t(2.0) == v  # read exactly from the file
        assert t.support == (0.007813, 8.0)
        # at and above 2 MeV the files are the Mueller 2011 table; its fit agrees at 2 MeV within 0.6%
        # except U238 (6.2%: the Mueller table at the edge of the fit range, same as the Daya Bay file).
        assert t(2.0) / Mueller2011(iso)(2.0) == pytest.approx(1.0, abs=0.065 if iso == "U238" else 0.006)
    u235 = TabulatedSpectrum.from_kopeikin_table(folder / "spectraMeVU235.txt")
    assert u235(1.25) == pytest.approx(0.5 * (2.41 + 1.69), rel=1e-14)  # linear between 1.0 and 1.5 MeV nodes
    assert u235(0.0) == 0.0 and u235(8.5) == 0.0
    # trapezoid integrals of the files (computed here): U235 5.7204, of which 4.0349 below 2 MeV.
    assert u235.integral() == pytest.approx(5.720414606, rel=1e-9)
    assert u235.integral(0.0, 2.0) == pytest.approx(4.034855856, rel=1e-9)


def test_kopeikin_total_three_column_table(data_dir):
    t = TabulatedSpectrum.from_file(data_dir / "reactor_spectra/kopeikin_total/kopeikin_spectrum.txt")
    # REFERENCE §5.3 [C]: trapezoid integral 6.669 total, 4.814 below 1.8 MeV, 1.855 above (4 digits).
    assert t.integral() == pytest.approx(6.669, rel=1e-4)
    assert t.integral(0.0, 1.8) == pytest.approx(4.814, rel=1e-4)
    assert t.integral(1.8, None) == pytest.approx(1.855, rel=3e-4)
    assert t(0.1) == 1.81  # written "0.181e+1" in the file


def test_bestiole_capture_spectra(data_dir):
    u = BinnedSpectrum.from_bestiole(data_dir / RC_DIR / "bestiole_u239.txt")
    n = BinnedSpectrum.from_bestiole(data_dir / RC_DIR / "bestiole_np239.txt")
    # Per-decay normalisation: sum(values) * 25 keV = 1.0000001 (239U) and 0.99999995 (239Np),
    # i.e. unit area to the file's float32 rounding (1e-6).
    assert u.integral() == pytest.approx(1.0, abs=1e-6)
    assert n.integral() == pytest.approx(1.0, abs=1e-6)
    assert (len(u.values), len(n.values)) == (51, 29)  # 25 keV bins from 0
    # Endpoints: the last non-empty bin is [1.250, 1.275] MeV for 239U (Q ~ 1.26 MeV) and
    # [0.700, 0.725] MeV for 239Np (Q ~ 0.72-0.73 MeV); bins are 25 keV so that is the resolution.
    assert u.support == pytest.approx((0.0, 1.275), abs=1e-9) and u.values[-1] > 0
    assert n.support == pytest.approx((0.0, 0.725), abs=1e-9) and n.values[-1] > 0
    assert u(1.26) > 0 and u(1.28) == 0 and n(0.72) > 0 and n(0.73) == 0


def test_reactor_with_low_energy_tables_normalised(data_dir):
    r = Reactor.with_low_energy_tables(data_dir, 2.96, 10.39, normalize_to_yield=True)
    assert r.component_names == ("U235", "U238", "Pu239", "Pu241", "U239", "Np239")
    comps = {c.name: c for c in r.components()}
    geo = 1.0 / (4 * math.pi * 1039.0**2)
    fps = r.fissions_per_second()
    # Each component integrates (ContinuousComponent.total_flux, split at table nodes and the join,
    # exact for the linear pieces, converged for the exp-polynomial) to its yield: rel 1e-10.
    for iso, f in r.fission_fractions.items():
        assert comps[iso].total_flux() == pytest.approx(fps * f * r.nu_per_fission[iso] * geo, rel=1e-10)
    for ch in ("U239", "Np239"):  # 0.60 captures/fission, one nu-bar per decay of each
        assert comps[ch].total_flux() == pytest.approx(fps * 0.60 * geo, rel=1e-10)
    assert r.spectral_flux() == pytest.approx(r.total_flux(), rel=1e-10)
    assert r.total_flux() == pytest.approx(4.798e13, rel=1e-3)  # REFERENCE §5.7
    # The join: Kopeikin table below 2 MeV, Huber fit from 2 MeV on.
    s = r.spectra["U235"]
    assert s(1.9999) == pytest.approx(1.69 + (1.31 - 1.69) * 0.4999 / 0.5, rel=1e-12)
    assert s(2.0) == HuberMueller("U235")(2.0)


def test_reactor_with_low_energy_tables_unnormalised(data_dir):
    r = Reactor.with_low_energy_tables(data_dir, 2.96, 10.39)
    fps, geo = r.fissions_per_second(), 1.0 / (4 * math.pi * 1039.0**2)
    comps = {c.name: c for c in r.components()}
    # Without normalisation: Kopeikin table below 2 MeV (4.0349 nu/fission for U235) + Huber 2-8 (1.6872).
    assert comps["U235"].total_flux() / (fps * 0.564 * geo) == pytest.approx(4.034855856 + 1.6872214643, rel=1e-9)
    # The tables + fits carry 94.1% of the TEXONO-yield flux (they stop at 8 MeV and differ from TEXONO).
    assert r.spectral_flux() / r.total_flux() == pytest.approx(0.941, abs=0.002)
    # Digitised capture curve (LOW confidence, PROVENANCE §4b): area 1.0143 in the file (shape only);
    # rescaled to carry 0.60 x 2.00 nu-bar per fission.
    rc = Reactor.with_low_energy_tables(data_dir, 2.96, 10.39, capture="curve")
    cap = {c.name: c for c in rc.components()}["capture"]
    assert rc.capture_spectra["capture"].integral() == pytest.approx(1.0143, rel=1e-4)
    assert cap.total_flux() == pytest.approx(fps * 1.2 * geo, rel=1e-10)
    with pytest.raises(ValueError, match="capture='ensdf'"):
        Reactor.with_low_energy_tables(data_dir, 2.96, 10.39, capture="ensdf")
