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
