"""The packaged sha256 registry of the published data, and ``cevnsjax data list | verify | fetch``.

Independent values: the release's own ``SHA256SUMS.txt`` (107 files) and ``hashlib.sha256`` of the files.
"""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from cevnsjax.cli import main
from cevnsjax.io import datasets, location
from cevnsjax.io.tables import read_table


def _sums(data_dir: Path) -> dict[str, str]:
    lines = (data_dir / "SHA256SUMS.txt").read_text().splitlines()
    return {name.removeprefix("./"): sha for sha, name in (ln.split(maxsplit=1) for ln in lines if ln.strip())}


def test_registry_matches_release_sums(data_dir):
    sums = _sums(data_dir)
    assert len(sums) == 107
    assert datasets.registry() == sums
    one = "dresden_ii/data_release.txt"  # spot-check against hashlib, not pooch
    assert datasets.file_sha256(data_dir / one) == hashlib.sha256((data_dir / one).read_bytes()).hexdigest() == sums[one]


def test_verify_real_folder_all_ok(data_dir):
    assert set(datasets.verify(data_dir).values()) == {"ok"}


def test_verify_detects_corrupted_and_missing_copy(data_dir, tmp_path):
    shutil.copytree(data_dir / "dresden_ii", tmp_path / "dresden_ii")
    assert datasets.verify(tmp_path, ["dresden_ii"]) == {"dresden_ii/QF_Fef_YBe.txt": "ok", "dresden_ii/data_release.txt": "ok"}
    f = tmp_path / "dresden_ii" / "data_release.txt"
    f.write_text(f.read_text() + "# edited\n")  # size/mtime change: the hash cache must not hide it
    (tmp_path / "dresden_ii" / "QF_Fef_YBe.txt").unlink()
    assert datasets.verify(tmp_path, ["dresden_ii"]) == {"dresden_ii/QF_Fef_YBe.txt": "missing",
                                                          "dresden_ii/data_release.txt": "mismatch"}
    assert main(["data", "verify", "--dir", str(tmp_path), "dresden_ii"]) == 1


def test_loader_refuses_corrupted_registered_file_but_not_user_tables(data_dir, tmp_path):
    src = data_dir / "dresden_ii" / "QF_Fef_YBe.txt"
    bad = tmp_path / "dresden_ii" / "QF_Fef_YBe.txt"
    bad.parent.mkdir()
    bad.write_text(src.read_text().replace("1", "2", 1))
    with pytest.raises(datasets.DataIntegrityError) as err:
        read_table(bad, ("E_R_keV", "Q_Fef", "Q_YBe"))
    msg = str(err.value)
    assert "dresden_ii/QF_Fef_YBe.txt" in msg and "cevnsjax data fetch --from" in msg and "\n" not in msg
    assert datasets.registry()["dresden_ii/QF_Fef_YBe.txt"][:16] in msg
    user = tmp_path / "my_qf.txt"  # same content, not a registered name: read without a check
    user.write_text(bad.read_text())
    assert read_table(user, ("E_R_keV", "Q_Fef", "Q_YBe")).data.shape[1] == 3
    good = read_table(src, ("E_R_keV", "Q_Fef", "Q_YBe"))  # the published file passes
    assert good.data.shape[0] > 10


def test_fetch_from_folder_and_file_url(data_dir, tmp_path, capsys):
    got = datasets.fetch(str(data_dir), tmp_path / "a", ["reactor_spectra"])
    n = len(datasets.datasets()["reactor_spectra"])
    assert len(got) == n and all(p.is_file() for p in got)
    assert set(datasets.verify(tmp_path / "a", ["reactor_spectra"]).values()) == {"ok"}
    assert main(["data", "fetch", "--from", data_dir.as_uri(), "--dir", str(tmp_path / "b")]) == 0
    assert "107 files fetched" in capsys.readouterr().out
    assert set(datasets.verify(tmp_path / "b").values()) == {"ok"}


def test_fetch_refuses_a_source_with_a_wrong_file(data_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(data_dir / "dresden_ii", src / "dresden_ii")
    (src / "dresden_ii" / "data_release.txt").write_text("0 1 2\n")
    with pytest.raises(ValueError, match="(?i)sha256|hash"):
        datasets.fetch(str(src), tmp_path / "dest", ["dresden_ii/data_release.txt"])
    assert not (tmp_path / "dest" / "dresden_ii" / "data_release.txt").exists()


def test_fetch_errors_name_the_problem(tmp_path, capsys):
    assert main(["data", "fetch", "--from", str(tmp_path / "nowhere"), "--dir", str(tmp_path / "d")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["data", "list", "no_such_set"]) == 2
    err = capsys.readouterr().err
    assert "no_such_set" in err and "dresden_ii" in err
    with pytest.raises(FileNotFoundError, match="not found in the --from source"):
        datasets.fetch(str(tmp_path), tmp_path / "d", ["dresden_ii/data_release.txt"])


def test_default_location_not_cwd_relative(monkeypatch, tmp_path):
    monkeypatch.delenv(location.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    a = location.data_root()
    monkeypatch.chdir(tmp_path.parent)
    assert location.data_root() == a == location.default_data_dir()
    assert a.is_absolute() and a.name.lower() == "cevnsjax"
    monkeypatch.setenv(location.ENV_VAR, "rel/data")  # explicit relative setting: resolved against cwd, absolute
    assert location.data_root() == (tmp_path.parent / "rel" / "data").resolve()


def test_missing_data_errors_name_the_file_and_the_command(monkeypatch, tmp_path):
    from cevnsjax.io.releases import load_dresden_ii

    monkeypatch.setenv(location.ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="cevnsjax data fetch --from"):
        location.data_dir(required=True)
    (tmp_path / "dresden_ii").mkdir()
    with pytest.raises(FileNotFoundError) as err:
        load_dresden_ii(tmp_path)
    msg = str(err.value)
    assert "dresden_ii/data_release.txt" in msg and "cevnsjax data fetch --from" in msg and "\n" not in msg


def test_list_prints_the_registry(capsys):
    assert main(["data", "list", "dresden_ii"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[1] for ln in out if not ln.startswith("#")] == ["dresden_ii/QF_Fef_YBe.txt", "dresden_ii/data_release.txt"]
    assert os.environ[location.ENV_VAR] in out[0] or str(location.data_root()) in out[0]


def test_quenching_table_shorter_than_recoil_grid_warns(data_dir, tmp_path):
    """A QF table cut at 1 keV on the Dresden-II grid reaching 4.5 keVnr: warned, naming both ranges."""
    import copy

    from cevnsjax.experiment import TableRangeWarning
    from cevnsjax.io.spec import experiment_from_spec, load_spec

    rows = [ln for ln in (data_dir / "dresden_ii" / "QF_Fef_YBe.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#") and float(ln.split()[0]) <= 1.0 + 1e-9]
    cut = tmp_path / "qf_cut.txt"  # a user table (not in the registry)
    cut.write_text("\n".join(rows) + "\n")
    spec = copy.deepcopy(load_spec("dresden_ii"))
    spec["detector"]["quenching"]["path"] = str(cut)
    with pytest.warns(TableRangeWarning, match=r"covers E_R 0-1 keVnr.*recoil grid spans 1e-05-4.5 keVnr"):
        experiment_from_spec(spec, with_data=False)
