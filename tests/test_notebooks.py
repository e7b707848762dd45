"""Every notebook runs top to bottom with tiny budgets (parameters injected after
the cell tagged "parameters", as papermill does)."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

TINY = {
    "freeway": 'steps = 1024\nnum_envs = 8\nextra = ["--test-every", "1"]',
    "venture": 'steps = 1024\nnum_envs = 8\nextra = []',
    "gravitar": 'steps = 1024\nnum_envs = 8\nextra = []',
    "mario": 'steps = 512\nnum_envs = 2\nextra = ["--stage", "1-1", "--test-every", "1"]',
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_runs(name, tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(TINY[name] + "\nshow_tensorboard = False",
                                                      metadata={"tags": ["injected-parameters"]}))
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    run_dir = ROOT / next(o["data"]["text/plain"].strip("'") for c in nb.cells if c.cell_type == "code"
                          for o in c.get("outputs", []) if o.get("data", {}).get("text/plain", "").startswith("'logs/"))
    try:
        assert (run_dir / "learning_curve.png").stat().st_size > 5000
        assert (run_dir / "play.mp4").stat().st_size > 1000
        if name == "mario":   # the shipped 1-1 policy plays in its own cell
            assert (run_dir / "shipped.mp4").stat().st_size > 10_000
        outputs = [o for c in nb.cells for o in c.get("outputs", [])]
        assert any("video" in str(o.get("data", {}).get("text/html", "")) for o in outputs)
    finally:
        _remove(run_dir, ROOT / "saved_model" / run_dir.name)


def _remove(*paths):
    import shutil
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
