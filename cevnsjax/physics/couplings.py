"""Nucleon vector couplings, neutrino charge-radius corrections and U(1)' charges (static choices).

Convention A of ``physics/REFERENCE.md`` §0: Q_W = Z g_p^V + N g_n^V with g_p^V = 1/2 - 2 s_W^2 and
g_n^V = -1/2 at tree level (SM Q_W ~ -N/2), prefactor G_F^2 M / pi.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "TreeLevel", "PDGRadiative", "FixedCouplings", "COUPLING_PRESETS",
    "CHARGE_RADIUS_CORRECTIONS", "ZPrimeCharges", "UNIVERSAL", "B_MINUS_L", "B_MINUS_LE_3LMU_PLUS_LTAU",
]


@dataclass(frozen=True)
class TreeLevel:
    """g_p^V = 1/2 - 2 sin^2(theta_W), g_n^V = -1/2 (sin^2 theta_W free)."""

    label: str = "tree level"

    def __call__(self, s2w):
        return 0.5 - 2.0 * s2w, -0.5 + 0.0 * s2w


@dataclass(frozen=True)
class PDGRadiative:
    """PDG-style radiatively corrected couplings (Erler & Su; dukecevns ``sm_vector_couplings``):

    g_p^V = rho (1/2 - 2 kappa s^2) + 2 l_uL + 2 l_uR + l_dL + l_dR,
    g_n^V = -rho/2 + l_uL + l_uR + 2 l_dL + 2 l_dR, with s^2 the free sin^2 theta_W (PDG input 0.23875).
    """

    rho: float = 1.0086
    kappa: float = 0.9978
    l_uL: float = -0.0031
    l_dL: float = -0.0025
    l_dR: float = 7.5e-5
    label: str = "PDG radiative"

    def __call__(self, s2w):
        l_uR = 0.5 * self.l_dR
        gp = self.rho * (0.5 - 2.0 * self.kappa * s2w) + 2 * self.l_uL + 2 * l_uR + self.l_dL + self.l_dR
        gn = -0.5 * self.rho + self.l_uL + l_uR + 2 * self.l_dL + 2 * self.l_dR + 0.0 * s2w
        return gp, gn


@dataclass(frozen=True)
class FixedCouplings:
    """Fixed (g_p^V, g_n^V) from a publication; sin^2 theta_W is then not used."""

    gp: float
    gn: float
    label: str = "fixed"

    def __call__(self, s2w):
        return self.gp + 0.0 * s2w, self.gn + 0.0 * s2w


#: Published coupling sets (REFERENCE §1.3; dukecevns xscns.cc, nuDL physicalConstants.h).
COUPLING_PRESETS = {
    "tree": TreeLevel(),
    "pdg": PDGRadiative(),
    "dukecevns_giunti": FixedCouplings(0.0227, -0.5117, "dukecevns default (Giunti)"),
    "erler_su": FixedCouplings(0.01836, -0.5117, "dukecevns pdgyear 2014-2019 (Erler & Su)"),
    "nudl": FixedCouplings(0.0153037, -0.512213, "nuDL"),
    "cadeddu": FixedCouplings(0.0229, -0.5117, "Cadeddu et al. / Atzori Corona et al."),
}

#: Flavour-dependent neutrino charge-radius corrections added to g_p^V (nu_e, nu_mu, nu_tau),
#: dukecevns ``chgradcorr`` types 1-3. 'giunti_legacy' flips the sign for antineutrinos as the
#: legacy dukecevns code does (flagged there as wrong); the others apply equally to nu and nu-bar.
CHARGE_RADIUS_CORRECTIONS = {
    "erler": (0.0196964, 0.0114381, 0.00706633),
    "giunti": (0.0212196, 0.0122716, 0.00766972),
    "giunti_legacy": (0.02191, 0.01267, 0.00792),
}


@dataclass(frozen=True)
class ZPrimeCharges:
    """U(1)' charges of u, d quarks and of nu_e, nu_mu, nu_tau for a light vector mediator.

    The Z' shifts the flavour-alpha weak charge by
    g^2 Q'_nu_alpha [(2Q'_u + Q'_d) Z F_p + (Q'_u + 2Q'_d) N F_n] / (sqrt(2) G_F (|q|^2 + m^2))
    (Liao & Marfatia, PLB 775, 54 (2017), 1708.04255; universal case: 3 g^2 (Z+N) / ...).
    """

    q_u: float = 1.0
    q_d: float = 1.0
    q_nu: tuple[float, float, float] = (1.0, 1.0, 1.0)
    label: str = "universal"

    def nucleon_charges(self):
        """(Q'_p, Q'_n) = (2 Q'_u + Q'_d, Q'_u + 2 Q'_d)."""
        return 2 * self.q_u + self.q_d, self.q_u + 2 * self.q_d


UNIVERSAL = ZPrimeCharges()
B_MINUS_L = ZPrimeCharges(1 / 3, 1 / 3, (-1.0, -1.0, -1.0), "B-L")
#: B - L_e - 3 L_mu + L_tau (Araki, Heeck & Kubo 1203.4951; the talk's anomaly-free example).
B_MINUS_LE_3LMU_PLUS_LTAU = ZPrimeCharges(1 / 3, 1 / 3, (-1.0, -3.0, 1.0), "B-L_e-3L_mu+L_tau")
