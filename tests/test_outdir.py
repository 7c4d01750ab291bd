"""Output folders (one run per folder, a lock, atomic writes, stale temp files) and the scan's content
fingerprint: concurrent scans into one folder, and a resume after the spec or a data file changed."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cevnsjax.cli import main
from cevnsjax.io.outdir import (
    LOCK,
    MARKER,
    OutputFolder,
    OutputFolderError,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    fingerprint,
    json_safe,
)


# ------------------------------------------------------------------------------------------ folder rules
def test_new_folder_gets_marker_and_complete_state(tmp_path):
    out = tmp_path / "a" / "b"
    with OutputFolder(out, "fit") as f:
        assert f.path == out and not f.resumed
        assert json.loads((out / MARKER).read_text())["state"] == "running"
        atomic_write_text(out / "x.txt", "1")
    rec = json.loads((out / MARKER).read_text())
    assert rec["command"] == "fit" and rec["state"] == "complete"


def test_folder_holding_another_run_is_refused_unless_overwrite(tmp_path):
    with OutputFolder(tmp_path, "fit"):
        atomic_write_text(tmp_path / "fit.json", "{}")
    with pytest.raises(OutputFolderError, match="holds the results of a complete `fit` run.*--overwrite"):
        with OutputFolder(tmp_path, "scan"):
            pass
    with pytest.raises(OutputFolderError, match="--overwrite"):  # --resume is only for the same command
        with OutputFolder(tmp_path, "scan", resume=True):
            pass
    with OutputFolder(tmp_path, "scan", overwrite=True):
        assert not (tmp_path / "fit.json").exists()  # cleared
        atomic_write_text(tmp_path / "scan.nc", "x")
    with OutputFolder(tmp_path, "scan", resume=True) as f:
        assert f.resumed and (tmp_path / "scan.nc").exists()


def test_scan_folder_without_marker_can_be_resumed(tmp_path):
    (tmp_path / "chunks").mkdir()  # written by a version without markers
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(OutputFolderError, match="`scan` run.*--resume"):
        with OutputFolder(tmp_path, "scan"):
            pass
    with OutputFolder(tmp_path, "scan", resume=True) as f:
        assert f.resumed and (tmp_path / "manifest.json").exists()


def test_foreign_folder_is_never_cleared(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(OutputFolderError, match="thesis.tex"):
            with OutputFolder(tmp_path, "fit", **kw):
                pass
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_a_file_or_unwritable_out_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        with OutputFolder(f, "fit"):
            pass
    with pytest.raises(OutputFolderError, match="cannot be created"):
        with OutputFolder(f / "sub", "fit"):
            pass


def test_failed_run_that_wrote_nothing_leaves_no_trace(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with OutputFolder(out, "fit"):
            raise RuntimeError("boom")
    assert not out.exists()
    with pytest.raises(RuntimeError):  # a failure after writing: the marker says so
        with OutputFolder(out, "fit"):
            atomic_write_text(out / "mle.json", "{}")
            raise RuntimeError("boom")
    assert json.loads((out / MARKER).read_text())["state"] == "failed"


def test_lock_refuses_a_second_writer(tmp_path):
    with OutputFolder(tmp_path, "scan"):
        # a second open file description cannot take the flock, in this or another process
        with pytest.raises(OutputFolderError, match=r"another cevnsjax run \(scan, pid \d+\) is writing"):
            with OutputFolder(tmp_path, "scan", resume=True):
                pass
    with OutputFolder(tmp_path, "scan", resume=True):  # released on exit
        pass


def test_stale_temp_files_are_removed_on_entry(tmp_path):
    with OutputFolder(tmp_path, "scan"):
        atomic_write_text(tmp_path / "scan.nc", "x")
    (tmp_path / "chunks").mkdir()
    stale = [tmp_path / ".scan.0123456789ab.cjtmp.nc", tmp_path / "chunks" / "chunk_000001.npz.4242.tmp"]
    for s in stale:
        s.write_text("half-written")
    keep = tmp_path / "notes.tmp"
    keep.write_text("x")
    with OutputFolder(tmp_path, "scan", resume=True):
        assert not any(s.exists() for s in stale) and keep.exists()


# ------------------------------------------------------------------------------------------ atomic writes
def test_atomic_path_keeps_suffix_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "plot.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp != target
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("writer failed")
    assert target.read_bytes() == b"png"  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]  # and no temp file is left
    a, b = set(), set()
    for _ in range(20):  # unique temp names (two writers never share one)
        with atomic_path(target) as t1, atomic_path(target) as t2:
            a.add(t1), b.add(t2)
            t1.write_text("1"), t2.write_text("2")
    assert len(a | b) == 40


def test_json_never_holds_nan_or_infinity(tmp_path):
    obj = {"a": float("nan"), "b": [1.0, float("inf"), -float("inf")], "c": np.array([np.nan, 2.0]), "d": np.float64(3)}
    assert json_safe(obj) == {"a": None, "b": [1.0, None, None], "c": [None, 2.0], "d": 3.0}
    atomic_write_json(tmp_path / "x.json", obj)
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text and json.loads(text)["c"] == [None, 2.0]


# ------------------------------------------------------------------------------------------ fingerprint
def test_fingerprint_covers_spec_data_and_version(tmp_path):
    data = tmp_path / "eff.txt"
    data.write_text("0 1\n1 1\n")
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "counts.txt").write_text("1 2 3\n")
    spec = {"name": "x", "exposure": {"live_days": 10.0}, "_base": "/somewhere"}
    fp = fingerprint(spec, [data, folder], "1.0")
    assert fp == fingerprint(dict(spec, _base="/elsewhere"), [folder, data], "1.0")  # order, base: irrelevant
    assert fp != fingerprint(dict(spec, exposure={"live_days": 11.0}), [data, folder], "1.0")
    assert fp != fingerprint(spec, [data, folder], "1.1")
    data.write_text("0 1\n1 0.9\n")
    fp2 = fingerprint(spec, [data, folder], "1.0")
    assert fp2 != fp
    (folder / "counts.txt").write_text("1 2 4\n")  # a file inside a data folder
    assert fingerprint(spec, [data, folder], "1.0") != fp2


# ------------------------------------------------------------------------------------------ scans (CLI)
_SCAN = ["--asimov", "--param", "signal_scale=lin:0.5:1.5:11", "--profile", "bkg.flat.rate",
         "--prior", "bkg.flat.rate=uniform:0:30", "--no-progress", "--chunk-size", "4"]


def _scan_result(out):
    import xarray as xr

    with xr.open_dataset(Path(out) / "scan.nc") as ds:
        return np.asarray(ds["chi2"]), int(ds.attrs["n_computed"])


def test_concurrent_scans_into_one_folder(tmp_path, capsys):
    out = tmp_path / "scan"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # the first run must still hold the folder when the second starts: 1001 points in chunks of 4 (251
    # atomic chunk files) keep it busy for seconds, where 11 points finished before the second run began
    long_scan = [a.replace("lin:0.5:1.5:11", "lin:0.5:1.5:1001") for a in _SCAN]
    first = subprocess.Popen([sys.executable, "-m", "cevnsjax.cli", "scan", "conus", *long_scan, "--out", str(out)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / MARKER).exists():  # the first run holds the lock once its marker is written
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.02)
    assert "scan, pid" in (out / LOCK).read_text()
    rc = main(["scan", "conus", *long_scan, "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and "another cevnsjax run (scan" in err and err.count("\n") == 1
    assert first.wait(timeout=300) == 0, first.communicate()
    chi2, n = _scan_result(out)
    # the first scan's result is intact: Asimov data, so chi2 is ~0 at the truth (signal_scale = 1, point 501)
    # and grows away from it (the bug this guards against: chi2 = 0 at every point)
    assert n == 1001 and int(np.argmin(chi2)) == 500 and chi2[500] < 1e-8
    assert chi2[0] > 1.0 and chi2[-1] > 1.0


def _spec(tmp_path, eff_low):
    eff = tmp_path / "eff.txt"  # efficiency vs keVee (the signal lies below 0.5 keVee)
    eff.write_text(f"0.0 {eff_low}\n0.5 0.9\n2.0 0.9\n")
    text = (Path(__file__).parents[1] / "cevnsjax/io/presets/conus.toml").read_text()
    spec = tmp_path / "spec.toml"
    spec.write_text(text.replace("[detector.resolution]", '[detector.efficiency]\nmodel = "tabulated"\n'
                                 'path = "eff.txt"\n\n[detector.resolution]'))
    return spec, eff


def test_resume_after_spec_or_data_change_recomputes_everything(tmp_path, capsys):
    spec, eff = _spec(tmp_path, 0.8)
    out = tmp_path / "scan"
    args = ["scan", str(spec), *_SCAN, "--out", str(out)]
    assert main(args) == 0
    chi2_a, n = _scan_result(out)
    assert n == 11
    # a killed run: its last chunk never written; resuming the unchanged scan computes only that chunk
    (out / "chunks" / "chunk_000002.npz").unlink()
    assert main(args + ["--resume"]) == 0
    chi2, n = _scan_result(out)
    assert n == 3 and np.array_equal(chi2, chi2_a)
    # the data file changes between the kill and the resume: every point is recomputed, and said so
    (out / "chunks" / "chunk_000002.npz").unlink()
    spec, eff = _spec(tmp_path, 0.5)
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "recomputing every point" in capsys.readouterr().err
    chi2_b, n = _scan_result(out)
    assert n == 11
    fresh = tmp_path / "fresh"
    assert main(["scan", str(spec), *_SCAN, "--out", str(fresh)]) == 0
    assert np.array_equal(chi2_b, _scan_result(fresh)[0])
    assert not np.allclose(chi2_b, chi2_a)  # the change mattered
    # the spec itself changes (exposure): everything again
    (out / "chunks" / "chunk_000000.npz").unlink()
    spec.write_text(spec.read_text().replace("live_days = 66.68", "live_days = 70.0"))
    assert main(args + ["--resume"]) == 0
    chi2_c, n = _scan_result(out)
    assert n == 11 and not np.allclose(chi2_c, chi2_b)
