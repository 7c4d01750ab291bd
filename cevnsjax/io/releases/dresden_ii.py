"""Dresden-II reactor CEvNS data release (Colaresi et al., PRL 129, 211802 (2022)).

``data_release.txt`` (130 rows, no header): E_ion bin centre [keVee], Rx-ON value and error,
Rx-OFF value and error. Values are **daily rates per 10 eVee bin for the whole ~3 kg crystal,
acceptance-corrected** (the release note quoted by the analysis code: "counts/10 eV·3 kg·day for
96.4 days of Rx-ON operation"); errors combine statistics and signal-acceptance uncertainty.
They are given exactly as released: not counts, not rescaled by exposure or mass. The published
fits use a Gaussian chi2 on the Rx-ON rates with these errors (see shared/physics/DRESDEN_II.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cevnsjax.io.tables import read_table, require_file, uniform_edges

__all__ = [
    "DresdenII",
    "load_dresden_ii",
    "DATA_FILE",
    "QF_FILE",
    "EXPOSURE_ON_DAYS",
    "EXPOSURE_OFF_DAYS",
    "BIN_WIDTH_KEVEE",
]

DATA_FILE = "data_release.txt"
QF_FILE = "QF_Fef_YBe.txt"
#: Rx-ON / Rx-OFF live days, from the data-release note (not stored in the file).
EXPOSURE_ON_DAYS = 96.4
EXPOSURE_OFF_DAYS = 25.0
#: release binning: 10 eVee
BIN_WIDTH_KEVEE = 0.010


@dataclass(frozen=True)
class DresdenII:
    """The Dresden-II spectra as released (130 bins, 0.2-1.5 keVee).

    Rates are in events / day / 10-eVee bin for the whole detector, acceptance-corrected;
    ``*_err_*`` are the released 1-sigma errors (statistical + signal acceptance).
    ``quenching_path`` is the Fef/YBe quenching-factor table (E_nr [keVnr], QF_Fef, QF_YBe) that
    the quenching module reads.
    """

    e_centres_kevee: np.ndarray  # (130,)
    e_edges_kevee: np.ndarray  # (131,)
    rate_on_per_day_per_bin: np.ndarray
    rate_on_err_per_day_per_bin: np.ndarray
    rate_off_per_day_per_bin: np.ndarray
    rate_off_err_per_day_per_bin: np.ndarray
    exposure_on_days: float
    exposure_off_days: float
    quenching_path: Path
    source_path: Path

    @property
    def bin_width_kevee(self) -> np.ndarray:
        """Width of each bin [keVee] (0.010 everywhere)."""
        return np.diff(self.e_edges_kevee)


def load_dresden_ii(path) -> DresdenII:
    """Load the Dresden-II release from the data folder, its ``dresden_ii/`` folder, or ``data_release.txt``.

    The quenching table ``QF_Fef_YBe.txt`` must sit next to the data file.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "dresden_ii" if (p / "dresden_ii").is_dir() else p
        p = require_file(p, DATA_FILE)
    elif not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} not found; pass the data folder or {DATA_FILE}")
    qf = require_file(p.parent, QF_FILE)
    t = read_table(
        p,
        ("e_kevee", "on", "on_err", "off", "off_err"),
        header=False,
        nonnegative=("e_kevee", "on_err", "off_err"),
    )
    centres = t.col("e_kevee")
    edges = uniform_edges(centres, str(p), "energy")
    width = (edges[-1] - edges[0]) / centres.size
    if abs(width - BIN_WIDTH_KEVEE) > 1e-6:
        raise ValueError(f"{p}: bin width {width:g} keVee; the Dresden-II release has 10 eVee bins")
    for name in ("on_err", "off_err"):
        bad = np.flatnonzero(t.col(name) <= 0)
        if bad.size:
            raise ValueError(f"{t.where(int(bad[0]), name)}: error must be > 0 (it is the chi2 sigma); "
                             "restore the published value")
    return DresdenII(
        e_centres_kevee=t.col("e_kevee"),
        e_edges_kevee=edges,
        rate_on_per_day_per_bin=t.col("on"),
        rate_on_err_per_day_per_bin=t.col("on_err"),
        rate_off_per_day_per_bin=t.col("off"),
        rate_off_err_per_day_per_bin=t.col("off_err"),
        exposure_on_days=EXPOSURE_ON_DAYS,
        exposure_off_days=EXPOSURE_OFF_DAYS,
        quenching_path=qf.resolve(),
        source_path=p.resolve(),
    )
