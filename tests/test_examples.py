"""The notebook example runs end to end through library functions only, and what it prints
shows DPI's noise score telling the truly clean training interactions from the noisy ones."""

import ast
import runpy

import pytest
from conftest import REPO


@pytest.mark.slow
def test_notebook_example_separates_clean_from_noisy(capsys):
    runpy.run_path(str(REPO / "examples" / "notebook_dpi.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    (printed,) = [line for line in lines if line.startswith("{") and "truly_clean_mean" in line]
    summary = ast.literal_eval(printed)  # cell 5: `noise_scores.summarize_table(table)`
    assert summary["truly_clean_mean"] > summary["truly_noisy_mean"]
    assert summary["noise_detection_auc"] > 0.5
