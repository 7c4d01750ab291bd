"""Independent reference implementation for tests: plain numpy/scipy, written from the formulas of
``physics/REFERENCE.md`` without using cevnsjax's cross-section code (only its constants' values,
typed here again)."""

import math

from scipy import integrate

GF = 1.1663787e-11  # MeV^-2
HBARC_FM = 197.3269804
HBARC_CM = HBARC_FM * 1e-13
NA = 6.02214076e23


def helm(q_MeV, A):
    s, a = 0.9, 0.52
    c = 1.23 * A ** (1 / 3) - 0.60
    r0 = math.sqrt(c * c + 7 / 3 * math.pi**2 * a * a - 5 * s * s)
    x = q_MeV / HBARC_FM * r0
    if x < 1e-4:
        j = 1.0 - x * x / 10
    else:
        j = 3 * (math.sin(x) - x * math.cos(x)) / x**3
    return j * math.exp(-((q_MeV / HBARC_FM * s) ** 2) / 2)


def dsigma_sm(Enu, ER, Z, N, M, A, s2w=0.23857):
    """SM dsigma/dE_R [cm^2/MeV], convention B (Q_W = N - (1-4s^2)Z, prefactor G_F^2 M/4pi), full kinematics."""
    if Enu < 0.5 * (ER + math.sqrt(ER * ER + 2 * M * ER)):
        return 0.0
    qw = N - (1 - 4 * s2w) * Z
    F = helm(math.sqrt(2 * M * ER + ER * ER), A)
    kin = 1 - M * ER / (2 * Enu**2) - ER / Enu + ER**2 / (2 * Enu**2)
    return GF**2 * M / (4 * math.pi) * qw**2 * F**2 * kin * HBARC_CM**2


def rate_point(ER, flux_density, e_max, isotopes, extra_points=()):
    """dR/dE_R [events/(kg day keV)] at E_R [MeV]: quad over E_nu for each isotope.

    isotopes: list of (Z, N, M, A, nuclei_per_kg)."""
    tot = 0.0
    for Z, N, M, A, nT in isotopes:
        emin = 0.5 * (ER + math.sqrt(ER * ER + 2 * M * ER))
        if emin >= e_max:
            continue
        pts = [p for p in extra_points if emin < p < e_max]
        val, _ = integrate.quad(lambda E: flux_density(E) * dsigma_sm(E, ER, Z, N, M, A), emin, e_max,
                                epsabs=0, epsrel=1e-11, limit=500, points=pts or None)
        tot += nT * val
    return tot * 86400 * 1e-3
