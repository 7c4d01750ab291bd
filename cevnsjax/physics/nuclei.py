"""Isotopes and compound targets.

Isotopic data: IUPAC/NIST via ``periodictable`` 2.1 (``physics/REFERENCE.md`` §3, ``ISOTOPES.md``);
elements H ... Bi below F taken from the same package (IUPAC abundances, AME atomic masses).
Nuclear mass M = m_atom u - Z m_e (electron binding neglected, < 1e-6 relative).
Number of target nuclei of isotope i per kg of a compound:
``N_i = (1000 g / M_molar) N_A * n_atoms(element) * abundance_i``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

from cevnsjax.physics.constants import AMU_MEV, AVOGADRO, M_ELECTRON

__all__ = ["Isotope", "Target", "ISOTOPES", "ELEMENTS", "parse_formula"]

# (element, Z, A, natural abundance %, atomic mass u)
_TABLE = (
    ("Cs", 55, 133, 100, 132.905452),
    ("I", 53, 127, 100, 126.904473),
    ("Ge", 32, 70, 20.52, 69.924249),
    ("Ge", 32, 72, 27.45, 71.922076),
    ("Ge", 32, 73, 7.76, 72.923459),
    ("Ge", 32, 74, 36.52, 73.921178),
    ("Ge", 32, 76, 7.75, 75.921403),
    ("Ar", 18, 36, 0.33361, 35.967545),
    ("Ar", 18, 38, 0.06289, 37.962732),
    ("Ar", 18, 40, 99.6035, 39.962383),
    ("Na", 11, 23, 100, 22.989769),
    ("Si", 14, 28, 92.2545, 27.976927),
    ("Si", 14, 29, 4.672, 28.976495),
    ("Si", 14, 30, 3.0735, 29.973770),
    ("Xe", 54, 124, 0.095, 123.905885),
    ("Xe", 54, 126, 0.089, 125.904297),
    ("Xe", 54, 128, 1.91, 127.903531),
    ("Xe", 54, 129, 26.401, 128.904781),
    ("Xe", 54, 130, 4.071, 129.903509),
    ("Xe", 54, 131, 21.232, 130.905084),
    ("Xe", 54, 132, 26.909, 131.904155),
    ("Xe", 54, 134, 10.436, 133.905393),
    ("Xe", 54, 136, 8.857, 135.907214),
    ("O", 8, 16, 99.7571, 15.994915),
    ("O", 8, 17, 0.0383501, 16.999132),
    ("O", 8, 18, 0.2045, 17.999160),
    ("Al", 13, 27, 100, 26.981538),
    ("Ca", 20, 40, 96.941, 39.962591),
    ("Ca", 20, 42, 0.647, 41.958618),
    ("Ca", 20, 43, 0.135, 42.958766),
    ("Ca", 20, 44, 2.086, 43.955481),
    ("Ca", 20, 46, 0.004, 45.953688),
    ("Ca", 20, 48, 0.187, 47.952523),
    ("W", 74, 180, 0.12, 179.946713),
    ("W", 74, 182, 26.5, 181.948206),
    ("W", 74, 183, 14.31, 182.950224),
    ("W", 74, 184, 30.64, 183.950933),
    ("W", 74, 186, 28.43, 185.954365),
    ("C", 6, 12, 98.94, 12.000000),
    ("C", 6, 13, 1.06, 13.003355),
    ("F", 9, 19, 100, 18.998403),
    # added for issue 13 (periodictable 2.1.0: IUPAC 2013/2021 abundances, AME masses; abundances
    # rounded to 6 significant digits): light targets, dopants, double-beta and scintillator crystals
    ("H", 1, 1, 99.9855, 1.0078250319),
    ("H", 1, 2, 0.0145, 2.01410177784),
    ("He", 2, 3, 0.0002, 3.01602932197),
    ("He", 2, 4, 99.9998, 4.00260325413),
    ("Li", 3, 6, 4.85, 6.0151228874),
    ("Li", 3, 7, 95.15, 7.016003434),
    ("B", 5, 10, 19.65, 10.012936862),
    ("B", 5, 11, 80.35, 11.009305167),
    ("N", 7, 14, 99.6337, 14.00307400425),
    ("N", 7, 15, 0.3663, 15.0001088983),
    ("Ne", 10, 20, 90.48, 19.9924401753),
    ("Ne", 10, 21, 0.27, 20.99384669),
    ("Ne", 10, 22, 9.25, 21.991385114),
    ("Mg", 12, 24, 78.9642, 23.985041689),
    ("Mg", 12, 25, 10.0109, 24.98583697),
    ("Mg", 12, 26, 11.0249, 25.98259297),
    ("S", 16, 32, 94.8559, 31.9720711735),
    ("S", 16, 33, 0.763047, 32.9714589086),
    ("S", 16, 34, 4.36527, 33.96786701),
    ("S", 16, 36, 0.015801, 35.96708069),
    ("Cl", 17, 35, 75.8, 34.96885269),
    ("Cl", 17, 37, 24.2, 36.96590257),
    ("K", 19, 39, 93.2581, 38.963706485),
    ("K", 19, 40, 0.0117, 39.96399817),
    ("K", 19, 41, 6.7302, 40.961825256),
    ("Zn", 30, 64, 49.17, 63.9291418),
    ("Zn", 30, 66, 27.73, 65.9260336),
    ("Zn", 30, 67, 4.04, 66.9271274),
    ("Zn", 30, 68, 18.45, 67.9248442),
    ("Zn", 30, 70, 0.61, 69.9253192),
    ("Ga", 31, 69, 60.108, 68.9255735),
    ("Ga", 31, 71, 39.892, 70.9247026),
    ("Mo", 42, 92, 14.649, 91.90680715),
    ("Mo", 42, 94, 9.187, 93.90508359),
    ("Mo", 42, 95, 15.873, 94.90583744),
    ("Mo", 42, 96, 16.673, 95.90467477),
    ("Mo", 42, 97, 9.582, 96.9060169),
    ("Mo", 42, 98, 24.292, 97.90540361),
    ("Mo", 42, 100, 9.744, 99.907468),
    ("Cd", 48, 106, 1.245, 105.9064598),
    ("Cd", 48, 108, 0.888, 107.9041836),
    ("Cd", 48, 110, 12.47, 109.9030075),
    ("Cd", 48, 111, 12.795, 110.9041838),
    ("Cd", 48, 112, 24.109, 111.9027639),
    ("Cd", 48, 113, 12.227, 112.90440811),
    ("Cd", 48, 114, 28.754, 113.903365),
    ("Cd", 48, 116, 7.512, 115.90476323),
    ("Te", 52, 120, 0.09, 119.9040658),
    ("Te", 52, 122, 2.55, 121.9030447),
    ("Te", 52, 123, 0.89, 122.904271),
    ("Te", 52, 124, 4.74, 123.9028183),
    ("Te", 52, 125, 7.07, 124.9044312),
    ("Te", 52, 126, 18.84, 125.9033121),
    ("Te", 52, 128, 31.74, 127.9044612),
    ("Te", 52, 130, 34.08, 129.906222745),
    ("Pb", 82, 204, 1.4, 203.9730435),
    ("Pb", 82, 206, 24.1, 205.9744652),
    ("Pb", 82, 207, 22.1, 206.9758968),
    ("Pb", 82, 208, 52.4, 207.976652),
    ("Bi", 83, 209, 100.0, 208.9803986),
)


@dataclass(frozen=True)
class Isotope:
    """One nuclide: element symbol, Z, A, natural abundance (fraction), atomic mass [u]."""

    element: str
    Z: int
    A: int
    abundance: float
    atomic_mass_u: float

    @property
    def N(self) -> int:
        return self.A - self.Z

    @property
    def name(self) -> str:
        return f"{self.element}{self.A}"

    @property
    def mass_MeV(self) -> float:
        """Nuclear mass M = m_atom u - Z m_e [MeV]."""
        return self.atomic_mass_u * AMU_MEV - self.Z * M_ELECTRON


def _build():
    by_el: dict[str, list[Isotope]] = {}
    for el, Z, A, ab, m in _TABLE:
        by_el.setdefault(el, []).append(Isotope(el, Z, A, ab / 100.0, m))
    # renormalise abundances per element to exactly 1 (tables sum to 100 +- 1e-4 %)
    out = {}
    for el, isos in by_el.items():
        s = sum(i.abundance for i in isos)
        out[el] = tuple(Isotope(i.element, i.Z, i.A, i.abundance / s, i.atomic_mass_u) for i in isos)
    return out


ELEMENTS: dict[str, tuple[Isotope, ...]] = _build()
ISOTOPES: dict[str, Isotope] = {i.name: i for isos in ELEMENTS.values() for i in isos}


def unknown_name_error(kind: str, value: str, valid) -> ValueError:
    close = difflib.get_close_matches(value, list(valid), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ValueError(f"{kind}={value!r} is not known{hint} Valid: {', '.join(sorted(valid))}")


def parse_formula(formula: str) -> dict[str, int]:
    """Parse a chemical formula such as 'CaWO4' or 'Al2O3' into {element: atoms per molecule}."""
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"formula={formula!r} is empty; give a chemical formula such as 'CsI' or 'CaWO4'")
    tokens = re.findall(r"([A-Z][a-z]?)(\d*)", formula)
    if "".join(el + n for el, n in tokens) != formula.strip():
        raise ValueError(
            f"formula={formula!r} cannot be parsed; write element symbols with counts, e.g. 'Al2O3'"
        )
    out: dict[str, int] = {}
    for el, n in tokens:
        if el not in ELEMENTS:
            raise unknown_name_error("element", el, ELEMENTS) from None
        count = int(n) if n else 1
        if count <= 0:
            raise ValueError(f"formula={formula!r}: count {count} for {el} must be >= 1")
        out[el] = out.get(el, 0) + count
    return out


@dataclass(frozen=True)
class Target:
    """A detector material: its isotopes with the number of atoms of each per molecule.

    ``Target.from_formula('CsI')``; ``abundances={'Ge72': 1.0}`` overrides the natural mix of an
    element (e.g. an enriched crystal). Arrays are in the order of ``isotopes``.
    """

    formula: str
    isotopes: tuple[Isotope, ...]
    atoms_per_molecule: tuple[float, ...]  # element count x isotopic fraction

    @classmethod
    def from_formula(cls, formula: str, abundances: dict[str, float] | None = None) -> Target:
        counts = parse_formula(formula)
        isos, atoms = [], []
        override = dict(abundances or {})
        for name in override:
            if name not in ISOTOPES:
                raise unknown_name_error("isotope", name, ISOTOPES)
            if ISOTOPES[name].element not in counts:
                raise ValueError(f"abundances: isotope {name!r} is not in formula {formula!r}")
        for el, n in counts.items():
            mine = {k: v for k, v in override.items() if ISOTOPES[k].element == el}
            if mine:
                total = sum(mine.values())
                if total <= 0 or any(v < 0 for v in mine.values()):
                    raise ValueError(f"abundances for {el}: {mine} must be >= 0 with a positive sum")
                for iso in ELEMENTS[el]:
                    if iso.name in mine and mine[iso.name] > 0:
                        isos.append(iso)
                        atoms.append(n * mine[iso.name] / total)
            else:
                for iso in ELEMENTS[el]:
                    isos.append(iso)
                    atoms.append(n * iso.abundance)
        return cls(formula, tuple(isos), tuple(atoms))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.isotopes)

    @property
    def Z(self) -> np.ndarray:
        return np.array([i.Z for i in self.isotopes], dtype=float)

    @property
    def N(self) -> np.ndarray:
        return np.array([i.N for i in self.isotopes], dtype=float)

    @property
    def A(self) -> np.ndarray:
        return np.array([i.A for i in self.isotopes], dtype=float)

    @property
    def mass_MeV(self) -> np.ndarray:
        return np.array([i.mass_MeV for i in self.isotopes], dtype=float)

    @property
    def molar_mass_g(self) -> float:
        """Mass of one mole of molecules [g/mol] from the isotopic composition."""
        return float(sum(a * i.atomic_mass_u for a, i in zip(self.atoms_per_molecule, self.isotopes)))

    def nuclei_per_kg(self) -> np.ndarray:
        """Number of nuclei of each isotope in 1 kg of target."""
        return 1000.0 / self.molar_mass_g * AVOGADRO * np.asarray(self.atoms_per_molecule)

    def nuclei(self, mass_kg: float) -> np.ndarray:
        """Number of nuclei of each isotope in a detector of ``mass_kg``."""
        m = float(mass_kg)
        if not (np.isfinite(m) and m > 0):
            raise ValueError(f"mass_kg={mass_kg!r} must be finite and > 0; give the detector mass in kg")
        return m * self.nuclei_per_kg()
