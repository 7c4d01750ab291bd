"""The product as a new user gets it: a wheel (not an editable install) in a fresh venv, run from a temp folder.

Builds the wheel from a copy of the sources (``pip wheel --no-deps --no-build-isolation``, offline), installs it
into a new venv whose dependencies come from this test venv (a ``.pth`` line naming its site-packages: no
downloads), and runs ``cevnsjax experiments``, ``predict conus``, the data commands, and every preset with the
data -- from a temporary current directory, with and without ``$CEVNSJAX_DATA``. Marked ``slow`` (~1-2 min);
the README's test command runs it.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args, cwd, env, check=True):
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv with the wheel installed, clean environment, temp cwd)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(REPO / "cevnsjax", src / "cevnsjax", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / f, src / f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEVNSJAX_", "PYTHON", "VIRTUAL_ENV"))}
    env["XDG_DATA_HOME"] = str(tmp / "xdg")  # platformdirs' per-user data folder: empty, inside tmp
    env["HOME"] = str(tmp / "home")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "wheels"),
          str(src)], cwd=tmp, env=env)
    wheel = next((tmp / "wheels").glob("cevnsjax-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_cevnsjax_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")  # deps only: .pth files there are not run
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
         cwd=tmp, env=env)
    cwd = tmp / "somewhere"
    cwd.mkdir()
    where = _run([str(py), "-c", "import cevnsjax; print(cevnsjax.__file__)"], cwd, env).stdout.strip()
    assert Path(where).is_relative_to(site), f"cevnsjax imported from {where}, not from the installed wheel in {site}"
    return bindir, env, cwd


def test_wheel_without_data(installed):
    bindir, env, cwd = installed
    exe = str(bindir / "cevnsjax")
    names = [ln.split()[0] for ln in _run([exe, "experiments"], cwd, env).stdout.splitlines() if ln.strip()]
    assert names == sorted(p.stem for p in (REPO / "cevnsjax" / "io" / "presets").glob("*.toml")) and len(names) >= 9
    out = _run([exe, "predict", "conus"], cwd, env).stdout
    assert "conus" in out.lower() or len(out.splitlines()) > 3
    r = _run([exe, "predict", "dresden_ii"], cwd, env, check=False)
    assert r.returncode == 2 and "cevnsjax data fetch --from" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _run([exe, "data", "verify"], cwd, env, check=False).returncode == 1  # default folder empty


def test_wheel_with_data(installed, data_dir):
    bindir, env, cwd = installed
    exe = str(bindir / "cevnsjax")
    # default location (platformdirs, here under XDG_DATA_HOME): fetch from a file:// URL, verify, use it
    out = _run([exe, "data", "fetch", "--from", data_dir.as_uri()], cwd, env).stdout
    assert "107 files fetched" in out and str(Path(env["XDG_DATA_HOME"])) in out
    assert "107/107 files ok" in _run([exe, "data", "verify"], cwd, env).stdout
    assert not any(cwd.iterdir()), "nothing may be written to the current directory"
    _run([exe, "predict", "dresden_ii"], cwd, env)
    # every preset with $CEVNSJAX_DATA (one process: the CLI's main per preset)
    env2 = dict(env, CEVNSJAX_DATA=str(data_dir))
    code = ("import sys; from cevnsjax.cli import main; from cevnsjax.io.spec import preset_names\n"
            "bad = [n for n in preset_names() if main(['predict', n]) != 0]\n"
            "print('FAILED', bad); sys.exit(1 if bad or len(preset_names()) < 9 else 0)")
    _run([str(bindir / "python"), "-c", code], cwd, env2)
