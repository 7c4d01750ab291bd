"""Physical constants and unit conversions.

Internal units: energies and masses in MeV, lengths in cm (fm where named), times in s.
Values are CODATA 2022 as shipped by ``scipy.constants`` 1.17 (see ``physics/REFERENCE.md`` §1.1);
m_pi is PDG. Python floats (float64 on the host) so that products of tiny and huge numbers are
folded before anything reaches a float32 device array.
"""

import math

G_F = 1.1663787e-11          # Fermi constant [MeV^-2]
HBARC_MEV_FM = 197.3269804    # hbar c [MeV fm]
HBARC_MEV_CM = HBARC_MEV_FM * 1e-13  # hbar c [MeV cm]
HBARC2_MEV2_CM2 = HBARC_MEV_CM**2    # (hbar c)^2 [MeV^2 cm^2] = 3.89379e-22
AMU_MEV = 931.49410372        # atomic mass unit [MeV]
M_PROTON = 938.27208943       # [MeV]
M_NEUTRON = 939.56542194      # [MeV]
M_ELECTRON = 0.51099895069    # [MeV]
M_MUON = 105.6583755          # [MeV]
M_PION = 139.57039            # charged pion [MeV] (PDG)
ALPHA = 7.2973525643e-3       # fine-structure constant
AVOGADRO = 6.02214076e23      # [mol^-1]
MEV_PER_GW_S = 6.241509074e21  # 1 GW = 6.2415e21 MeV/s

SECONDS_PER_DAY = 86400.0
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY
KEV = 1e-3                    # 1 keV in MeV
EV = 1e-6                     # 1 eV in MeV
FM = 1.0 / HBARC_MEV_FM       # 1 fm in MeV^-1 (so q[MeV] * r[fm] * FM is dimensionless)
CM2_PER_M2 = 1e4

#: Low-energy weak mixing angle, MSbar at Q -> 0 (PDG; REFERENCE §1.2).
SIN2_THETA_W_LOW_ENERGY = 0.23857

#: sqrt(2) pi alpha / (3 G_F) [MeV^2]: shift of g_p^V per unit neutrino charge radius <r^2> [MeV^-2].
CHARGE_RADIUS_COEFF = math.sqrt(2.0) * math.pi * ALPHA / (3.0 * G_F)


def pion_dar_prompt_energy() -> float:
    """Energy of the prompt nu_mu from pi+ -> mu+ nu_mu at rest, (m_pi^2 - m_mu^2)/(2 m_pi) [MeV]."""
    return (M_PION**2 - M_MUON**2) / (2.0 * M_PION)
