"""Neutrinos from pion decay at rest (spallation sources: SNS, CSNS).

pi+ -> mu+ nu_mu gives a prompt line at E = (m_pi^2 - m_mu^2) / (2 m_pi) = 29.79 MeV (a delta,
integrated exactly); mu+ -> e+ nu_e anti-nu_mu gives the delayed Michel spectra on [0, m_mu/2]
(unit-normalised; e.g. dukecevns ``NuFlux.cc``; REFERENCE §6):

    nu_e:       f(E) = (192/m_mu) (E/m_mu)^2 (1/2 - E/m_mu),   <E> = 31.70 MeV
    anti-nu_mu: f(E) = (64/m_mu)  (E/m_mu)^2 (3/4 - E/m_mu),   <E> = 36.98 MeV

Each flavour carries Phi = r N_POT / (4 pi L^2), with r neutrinos per flavour per proton.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cevnsjax.physics.constants import M_MUON, SECONDS_PER_DAY, pion_dar_prompt_energy
from cevnsjax.sources.base import ContinuousComponent, LineComponent, Source, check_positive, geometric_factor_cm2

__all__ = ["PionDAR", "michel_nu_e", "michel_nubar_mu"]

_ENDPOINT = M_MUON / 2.0


def michel_nu_e(E):
    """Unit-normalised delayed nu_e spectrum [MeV^-1]."""
    x = np.asarray(E, float) / M_MUON
    return np.where((x >= 0) & (x <= 0.5), 192.0 / M_MUON * x**2 * (0.5 - x), 0.0)


def michel_nubar_mu(E):
    """Unit-normalised delayed anti-nu_mu spectrum [MeV^-1]."""
    x = np.asarray(E, float) / M_MUON
    return np.where((x >= 0) & (x <= 0.5), 64.0 / M_MUON * x**2 * (0.75 - x), 0.0)


@dataclass(frozen=True)
class PionDAR(Source):
    """A pion decay-at-rest source seen at ``distance_m``.

    nu_per_flavour_per_proton: r (COHERENT: 0.08 in 2017, 0.0848 in 2021);
    protons_per_second: proton rate on target [s^-1] (beam power / proton energy).
    """

    nu_per_flavour_per_proton: float
    protons_per_second: float
    distance_m: float

    def __post_init__(self):
        check_positive("nu_per_flavour_per_proton", self.nu_per_flavour_per_proton, "per proton")
        check_positive("protons_per_second", self.protons_per_second, "s^-1", "give the proton rate on target")
        check_positive("distance_m", self.distance_m, "m")

    @classmethod
    def from_beam_power(cls, power_MW: float, proton_energy_GeV: float, nu_per_flavour_per_proton: float,
                        distance_m: float) -> PionDAR:
        """Protons per second = beam power / proton kinetic energy."""
        p = check_positive("power_MW", power_MW, "MW") * 1e6
        e = check_positive("proton_energy_GeV", proton_energy_GeV, "GeV") * 1e9 * 1.602176634e-19
        return cls(nu_per_flavour_per_proton, p / e, distance_m)

    @classmethod
    def from_flux(cls, flux_per_flavour: float, distance_m: float) -> PionDAR:
        """A source with a given flux per flavour at the detector [cm^-2 s^-1]."""
        f = check_positive("flux_per_flavour", flux_per_flavour, "cm^-2 s^-1")
        return cls(1.0, f / geometric_factor_cm2(distance_m), distance_m)

    @classmethod
    def coherent_csi_2017(cls) -> PionDAR:
        """SNS as in COHERENT CsI 2017: r = 0.08, 5.7e20 POT/day, 19.3 m (1.13e7 cm^-2 s^-1 per flavour)."""
        return cls(0.08, 5.7e20 / SECONDS_PER_DAY, 19.3)

    @classmethod
    def sns(cls, power_MW: float = 1.4, distance_m: float = 19.3) -> PionDAR:
        """SNS at 1 GeV with r = 0.0848 (COHERENT CsI 2021); 1.4 MW gives 4.7e7 cm^-2 s^-1 (3 flavours) at 19.3 m."""
        return cls.from_beam_power(power_MW, 1.0, 0.0848, distance_m)

    @classmethod
    def csns(cls, distance_m: float = 10.5, total_flux: float = 2.0e7) -> PionDAR:
        """CSNS for CICENNS: 2.0e7 cm^-2 s^-1 summed over the three flavours at 10.5 m (the talk's table)."""
        return cls.from_flux(total_flux / 3.0, distance_m)

    @property
    def flux_per_flavour(self) -> float:
        """Phi = r N_POT / (4 pi L^2) [cm^-2 s^-1]."""
        return self.nu_per_flavour_per_proton * self.protons_per_second * geometric_factor_cm2(self.distance_m)

    def components(self):
        phi = self.flux_per_flavour
        bp = (0.0, 0.25 * _ENDPOINT, 0.5 * _ENDPOINT, 0.75 * _ENDPOINT, _ENDPOINT)
        return (
            LineComponent("prompt_numu", 1, False, pion_dar_prompt_energy(), phi),
            ContinuousComponent("delayed_nue", 0, False, lambda E: phi * michel_nu_e(E), bp, max_step=_ENDPOINT),
            ContinuousComponent("delayed_numubar", 1, True, lambda E: phi * michel_nubar_mu(E), bp, max_step=_ENDPOINT),
        )
