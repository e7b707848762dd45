"""notebooks/: built from one template, and each runs top to bottom with tiny budgets
(parameters injected after the cell tagged "parameters", as papermill does), writing
only to a temporary folder."""

import base64
import io

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from tests.conftest import ROOT

TINY = {
    "freeway": 'steps = 1024\nnum_envs = 8\nextra = ["--test-every", "1"]',
    "venture": 'steps = 1024\nnum_envs = 8\nextra = []',
    "gravitar": 'steps = 1024\nnum_envs = 8\nextra = []',
    "mario": 'steps = 512\nnum_envs = 2\nextra = ["--stage", "1-1", "--test-every", "1"]',
}


def test_notebooks_are_the_template_built():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", ROOT / "notebooks" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.GAMES) == sorted(TINY)
    for name in build.GAMES:
        assert (ROOT / "notebooks" / f"{name}.ipynb").read_text() == build.text(name), \
            f"{name}.ipynb differs from the template: run python notebooks/build.py"


# Venture's and Gravitar's notebooks are Freeway's template with another game line (the
# test above holds them to it) and their games run in
# test_envpool_env.py::test_each_named_atari_game_steps_through_the_interface: executing them too
# cost ~2.5 min of the suite and checked nothing more.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["freeway", "mario"])
def test_notebook_runs(name, tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        TINY[name] + f"\nshow_tensorboard = False\nworkdir = {str(tmp_path)!r}",
        metadata={"tags": ["injected-parameters"]}))
    before = sorted(p.name for p in (ROOT / "logs").iterdir()), sorted(p.name for p in (ROOT / "saved_model").iterdir())
    NotebookClient(nb, timeout=900, iopub_timeout=60, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    run_dir = tmp_path / next(o["data"]["text/plain"].strip("'") for c in nb.cells if c.cell_type == "code"
                              for o in c.get("outputs", []) if o.get("data", {}).get("text/plain", "").startswith("'logs/"))
    assert (run_dir / "learning_curve.png").stat().st_size > 5000
    assert (run_dir / "play.mp4").stat().st_size > 1000
    assert (tmp_path / "saved_model" / run_dir.name / "saved_model.pb").is_file()
    if name == "mario":   # the shipped 1-1 policy plays in its own cell
        assert (run_dir / "shipped.mp4").stat().st_size > 10_000
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    # The videos are shown as animated GIFs (the best test episode, the export's episode, on
    # Mario the shipped policy's): browsers' players do not decode the mp4 files' mp4v.
    gifs = [Image.open(io.BytesIO(base64.b64decode(o["data"]["image/gif"])))
            for o in outputs if "image/gif" in o.get("data", {})]
    assert len(gifs) == (3 if name == "mario" else 2) and all(gif.n_frames > 10 for gif in gifs), \
        [gif.n_frames for gif in gifs]
    # Nothing landed in the repository's own folders.
    after = sorted(p.name for p in (ROOT / "logs").iterdir()), sorted(p.name for p in (ROOT / "saved_model").iterdir())
    assert after == before
