"""Execute every notebook in ``notebooks/`` (new ones are picked up automatically) and check how it is stored.

Each notebook runs top to bottom in a fresh Jupyter kernel (nbclient) with ``notebooks/`` as working
directory, ``MPLBACKEND=Agg`` and ``$CEVNSJAX_DATA`` pointing at the published-data folder when one is
found. A notebook that needs that data says so in its metadata, ``{"cevnsjax": {"needs_data": true}}``;
it then goes through the ``data_dir`` fixture (skipped with the reason where the folder is absent, a
failure under ``CEVNSJAX_REQUIRE_DATA=1``). The notebooks' ``parameters`` cells hold their CI (quick)
settings; a failure reports the failing cell's source and traceback.

Equivalent with nbmake: ``pytest --nbmake notebooks/`` (run from the repository root).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TIMEOUT_S = int(os.environ.get("CEVNSJAX_NOTEBOOK_TIMEOUT", "600"))  # per cell
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _ids(paths):
    return [p.name for p in paths]


def _needs_data(nb) -> bool:
    return bool(nb.metadata.get("cevnsjax", {}).get("needs_data", False))


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks in notebooks/")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, request, monkeypatch):
    from cevnsjax.io.location import ENV_VAR, data_dir as find_data_dir

    nb = nbformat.read(path, as_version=4)
    data = request.getfixturevalue("data_dir") if _needs_data(nb) else find_data_dir()
    if data is not None:
        monkeypatch.setenv(ENV_VAR, str(Path(data).resolve()))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute(cwd=str(NOTEBOOK_DIR))
    except nbclient.exceptions.CellExecutionError as err:
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))), "?")
        pytest.fail(f"{path.name}: cell {index} failed\n{_ANSI.sub('', str(err))}", pytrace=False)
    except nbclient.exceptions.CellTimeoutError as err:
        pytest.fail(f"{path.name}: a cell ran longer than {TIMEOUT_S} s\n{_ANSI.sub('', str(err))}", pytrace=False)


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks in notebooks/")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_stored_clean(path):
    """nbformat 4, valid, stored without outputs, with a ``parameters``-tagged settings cell."""
    nb = nbformat.read(path, as_version=4)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; clear outputs before saving"
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged, f"{path.name}: no cell tagged 'parameters' (put the settings, e.g. QUICK = True, there)"
