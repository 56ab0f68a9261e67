"""The notebook example runs end to end through library functions only."""

import runpy

import pytest
from conftest import REPO


@pytest.mark.slow
def test_notebook_example_runs(capsys):
    runpy.run_path(str(REPO / "examples" / "notebook_dpi.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "best epoch" in out and "truly_clean_mean" in out
