"""Every tutorial notebook runs from top to bottom in smoke mode (TINYBNN_SMOKE=1), is committed
without outputs, and matches its paired jupytext ``.py`` file.

The notebooks are found by globbing ``tutorials/*.ipynb``, so a new tutorial is covered as soon as
it is added. Each runs in a fresh ``python3`` kernel (ipykernel of this environment) through
nbclient; a cell that raises fails the test with the cell's source and the error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds; smoke runs take a few seconds per notebook


def _ids(paths):
    return [p.name for p in paths]


@pytest.mark.skipif(not NOTEBOOKS, reason="no tutorials/*.ipynb yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_smoke_mode(path, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYBNN_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{path.name}: a cell failed in smoke mode:\n{error}", pytrace=False)
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: cell errors {[e.get('ename') for e in errors]}"


@pytest.mark.skipif(not NOTEBOOKS, reason="no tutorials/*.ipynb yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_clean(path):
    """No outputs, no execution counts, and a cell tagged "parameters" that reads
    TINYBNN_SMOKE."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, (f"{path.name}: code cells {dirty} have outputs; clear them "
                       f"(jupytext --to ipynb from the .py, or nbstripout)")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert "TINYBNN_SMOKE" in tagged[0].source


@pytest.mark.skipif(not NOTEBOOKS, reason="no tutorials/*.ipynb yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_matches_its_py_pair(path):
    """The .ipynb is generated from the jupytext percent-format .py of the same name."""
    jupytext = pytest.importorskip("jupytext")
    pair = path.with_suffix(".py")
    assert pair.exists(), f"{path.name} has no paired {pair.name} (jupytext percent format)"
    from_py = jupytext.read(pair)
    nb = nbformat.read(path, as_version=4)
    strip = lambda cells: [(c.cell_type, c.source.strip()) for c in cells]  # noqa: E731
    assert strip(from_py.cells) == strip(nb.cells), (
        f"{path.name} differs from {pair.name}; regenerate it with "
        f"`jupytext --to ipynb {pair.name}`")
