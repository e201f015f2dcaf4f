"""The notebooks run top to bottom through the Python API (small path counts)."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "commit without outputs"
    monkeypatch.setenv("KZSIM_NOTEBOOK_PATHS", "300")
    monkeypatch.setenv("KZSIM_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silence jupyter_core's path-migration warning
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    stderr = [
        o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"
    ]  # no alarming text from a notebook that works (a cluster's shutdown, a library's warning)
    assert not stderr, stderr
    if path.stem == "quickstart":
        assert os.path.getsize(tmp_path / "out" / "report.pdf") > 10_000
