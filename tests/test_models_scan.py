"""models/zprime_exclusion_scan.py runs at tiny settings and writes sane exclusion limits."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_zprime_exclusion_scan_tiny(tmp_path, data_dir):
    cmd = [sys.executable, str(ROOT / "models" / "zprime_exclusion_scan.py"), "--quick", "--n", "6", "--no-plots",
           "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    for key in ("dresden_ii_zprime", "dresden_ii_scalar", "coherent_csi_2017_zprime", "coherent_csi_2017_scalar"):
        lim = [v for v in s[key]["limit_at_mass_MeV"].values() if v is not None]
        # limits exist and grow with the mediator mass (heavier mediators are suppressed by 1/m^2)
        assert len(lim) >= 4, key
        assert lim[-1] > lim[0], key
        assert s[key]["converged_fraction_dchi2_lt_100"] > 0.8, key
    # the SM-like best fit of Dresden-II with the published background model: chi^2 ~ 104 for 130 bins
    assert 90 < s["dresden_ii_zprime"]["best_fit"]["chi2"] < 110
