"""Packaging: ``kernels/`` is installed as ``tinybnn.kernels`` by both ``pip install .`` and
``pip install -e .``."""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_kernels_subpackage_imports_from_this_install():
    import tinybnn.kernels

    assert pathlib.Path(tinybnn.kernels.__file__).parent.name == "kernels"


@pytest.mark.slow
def test_regular_install_ships_kernels_as_subpackage(tmp_path):
    """Build the wheel (what ``pip install .`` installs), install it into a bare folder and
    import ``tinybnn.kernels`` from there."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--quiet", "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True)
    if build.returncode != 0 and "Could not find a version" in build.stderr:
        pytest.skip("no access to the package index to fetch the build backend")
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("tinybnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinybnn/kernels/__init__.py" in names
    assert any(n.startswith("tinybnn/kernels/") and n.endswith(".cu") for n in names)
    assert not any(n.startswith("kernels/") for n in names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(site), str(wheel)], check=True)
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c",
                          "import tinybnn.kernels, tinybnn; print(tinybnn.kernels.__file__)"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(site) in out.stdout
