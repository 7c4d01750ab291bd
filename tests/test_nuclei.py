"""Targets: isotope data, compounds, numbers of nuclei."""

import numpy as np
import pytest

from cevnsjax.physics.nuclei import ISOTOPES, Target, parse_formula


def test_isotope_masses_match_reference_table():
    # REFERENCE §3 nuclear masses (m_atom u - Z m_e) to the 3 decimals printed there (MeV)
    for name, m in {"Cs133": 123772.540, "I127": 118183.685, "Ge72": 66978.638, "Ar40": 37215.526,
                    "Na23": 21409.214, "W184": 171311.396, "O16": 14895.081, "Ca40": 37214.698}.items():
        np.testing.assert_allclose(ISOTOPES[name].mass_MeV, m, atol=1.5e-3)


@pytest.mark.parametrize("formula,elements", [("CsI", {"Cs": 1, "I": 1}), ("NaI", {"Na": 1, "I": 1}),
                                              ("CaWO4", {"Ca": 1, "W": 1, "O": 4}), ("Al2O3", {"Al": 2, "O": 3}),
                                              ("Ge", {"Ge": 1}), ("Xe", {"Xe": 1}), ("Si", {"Si": 1}), ("Ar", {"Ar": 1})])
def test_compounds(formula, elements):
    assert parse_formula(formula) == elements
    t = Target.from_formula(formula)
    for el, n in elements.items():
        np.testing.assert_allclose(sum(a for a, i in zip(t.atoms_per_molecule, t.isotopes) if i.element == el), n, rtol=1e-12)


def test_molar_masses_and_nuclei_counts():
    # Standard atomic weights (REFERENCE §3): Ge 72.630, Ar 39.95, Xe 131.293, W 183.84 g/mol within 0.01%
    for f, w in {"Ge": 72.630, "Ar": 39.95, "Xe": 131.293}.items():
        np.testing.assert_allclose(Target.from_formula(f).molar_mass_g, w, rtol=1e-4)
    # CsI: 259.81 g/mol, 1 kg holds 2.3179e24 of each nucleus
    t = Target.from_formula("CsI")
    np.testing.assert_allclose(t.nuclei_per_kg(), [2.3179e24, 2.3179e24], rtol=1e-4)
    np.testing.assert_allclose(t.nuclei(14.6), 14.6 * t.nuclei_per_kg(), rtol=1e-14)
    # an enriched crystal
    g = Target.from_formula("Ge", abundances={"Ge76": 0.88, "Ge74": 0.12})
    assert g.names == ("Ge74", "Ge76")
    np.testing.assert_allclose(g.atoms_per_molecule, [0.12, 0.88])


def test_bad_input():
    with pytest.raises(ValueError, match="element='Qq'"):
        parse_formula("QqO2")
    with pytest.raises(ValueError, match="did you mean"):
        Target.from_formula("Ge", abundances={"Ge77": 1.0})
    with pytest.raises(ValueError, match="cannot be parsed"):
        parse_formula("Ca WO4")
    with pytest.raises(ValueError, match="empty"):
        parse_formula("")
    with pytest.raises(ValueError, match="mass_kg=0"):
        Target.from_formula("Ge").nuclei(0)


# IUPAC (CIAAW 2021) standard atomic weights: value and the half-width allowed by its stated
# uncertainty, or the interval for elements whose weight is given as [lo, hi]
_IUPAC = {
    "H": ((1.00784, 1.00811), None), "He": (4.002602, 2e-6), "Li": ((6.938, 6.997), None),
    "B": ((10.806, 10.821), None), "N": ((14.00643, 14.00728), None), "O": ((15.99903, 15.99977), None),
    "Ne": (20.1797, 6e-4), "Mg": ((24.304, 24.307), None), "S": ((32.059, 32.076), None),
    "Cl": ((35.446, 35.457), None), "K": (39.0983, 1e-4), "Zn": (65.38, 2e-2), "Ga": (69.723, 1e-3),
    "Mo": (95.95, 1e-2), "Cd": (112.414, 4e-3), "Te": (127.60, 3e-2), "Pb": ((206.14, 207.94), None),
    "Bi": (208.98040, 1e-5),
}


@pytest.mark.parametrize("el", sorted(_IUPAC))
def test_added_elements_match_iupac_standard_atomic_weights(el):
    """Each element added for issue 13: molar mass from the isotope table within the IUPAC standard
    atomic weight (its uncertainty or interval), abundances summing to 1, N = A - Z >= 0."""
    w, tol = _IUPAC[el]
    m = Target.from_formula(el).molar_mass_g
    if tol is None:
        assert w[0] <= m <= w[1], (el, m, w)
    else:
        assert abs(m - w) <= tol, (el, m, w)
    t = Target.from_formula(el)
    np.testing.assert_allclose(sum(t.atoms_per_molecule), 1.0, rtol=1e-12)
    assert np.all(t.N >= 0) and len(set(t.Z)) == 1


def test_added_element_nuclear_masses():
    # M = m_atom u - Z m_e for a few added nuclides (AME2016 atomic masses in u):
    # H1 1.00782503 u -> 938.272 MeV (the proton mass 938.27209 MeV, CODATA);
    # Mo100 99.907468 u, Li7 7.016003434 u, Te130 129.906222745 u
    u, me = 931.49410372, 0.51099895069  # CODATA 2022 (REFERENCE §1.1)
    for name, m_u, Z in (("H1", 1.0078250319, 1), ("Li7", 7.016003434, 3), ("Mo100", 99.907468, 42),
                         ("Te130", 129.906222745, 52)):
        np.testing.assert_allclose(ISOTOPES[name].mass_MeV, m_u * u - Z * me, rtol=1e-11)
    np.testing.assert_allclose(ISOTOPES["H1"].mass_MeV, 938.27209, atol=2e-5)  # proton (binding 13.6 eV)
    assert parse_formula("Li2MoO4") == {"Li": 2, "Mo": 1, "O": 4}
    assert parse_formula("Bi4Ge3O12") == {"Bi": 4, "Ge": 3, "O": 12}
