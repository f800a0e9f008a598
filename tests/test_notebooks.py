"""Notebooks are documentation that must run: CI executes them on the tiny config."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# Notebook kernels: the second tier (make test-slow), which CI also runs.
pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_correction.ipynb"])
def test_notebook_executes_without_errors(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("INVERT_NOTEBOOK_EXPERIMENT", "tiny")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # The comparison plot was drawn.
    assert any("image/png" in o.get("data", {}) for o in outputs)
