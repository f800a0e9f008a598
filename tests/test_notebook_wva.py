"""notebooks/05_weights_vs_activations.ipynb runs end to end on the tiny config (SmolLM2, 10 people)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# A notebook kernel and the packaged LM: the second tier (make test-slow), which CI also runs.
pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_weights_vs_activations.ipynb"


def test_weights_vs_activations_notebook_executes(monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the three plots
