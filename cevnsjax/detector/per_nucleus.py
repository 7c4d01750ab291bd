"""Quenching of a compound target: every nucleus with its own model.

A recoiling Na nucleus in NaI and a recoiling I nucleus lose different fractions of their energy
to ionisation (Lindhard: k = 0.133 Z^(2/3) A^(-1/2) and eps = 11.5 Z^(-7/3) E_R differ per
element), so the recoil spectrum of each element is quenched separately and the electron-
equivalent spectra are summed. :class:`PerNucleusQuenching` holds one model per element;
:func:`cevnsjax.experiment.predict` applies ``models[g]`` to the isotopes of ``elements[g]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import numpy as np

from cevnsjax.detector.quenching import Lindhard, QuenchingModel
from cevnsjax.physics.nuclei import ELEMENTS, ISOTOPES, parse_formula

__all__ = ["PerNucleusQuenching"]


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PerNucleusQuenching(QuenchingModel):
    """One quenching model per element of a compound: ``models[g]`` quenches the isotopes of ``elements[g]``.

    ``PerNucleusQuenching.lindhard("NaI")`` gives Lindhard(11, 22.99) for Na and Lindhard(53, 126.90)
    for I (A: the element's mean atomic mass [u]). ``Q``/``E_ee`` of a single recoil energy are not
    defined for the compound (they depend on which nucleus recoiled): use ``models[g]``.
    """

    models: tuple
    elements: tuple = field(metadata=dict(static=True))

    def __post_init__(self):
        if len(self.models) != len(self.elements) or not self.models:
            raise ValueError(f"PerNucleusQuenching: give one model per element, got {len(self.models)} models "
                             f"for elements {self.elements}")
        for el, m in zip(self.elements, self.models):
            if el not in ELEMENTS:
                raise ValueError(f"PerNucleusQuenching: element {el!r} is not in the nuclear table")
            if not isinstance(m, QuenchingModel):
                raise ValueError(f"PerNucleusQuenching: the model for {el} is {type(m).__name__}, not a quenching model")

    @classmethod
    def lindhard(cls, formula: str) -> PerNucleusQuenching:
        """Standard Lindhard for each element of ``formula`` with its own Z and mean atomic mass A [u]."""
        els = tuple(parse_formula(formula))
        models = []
        for el in els:
            isos = ELEMENTS[el]
            models.append(Lindhard(float(isos[0].Z), float(sum(i.abundance * i.atomic_mass_u for i in isos))))
        return cls(tuple(models), els)

    def groups(self, isotope_names) -> np.ndarray:
        """Index into ``models`` of each isotope (names such as 'Na23')."""
        out = []
        for n in isotope_names:
            el = ISOTOPES[n].element
            if el not in self.elements:
                raise ValueError(f"PerNucleusQuenching has no model for {n} (element {el}); elements: {self.elements}")
            out.append(self.elements.index(el))
        return np.asarray(out)

    def Q(self, E_R_keV):
        raise ValueError(f"Q(E_R) of a compound ({', '.join(self.elements)}) depends on the recoiling nucleus; "
                         "use .models[i] for element .elements[i]")
