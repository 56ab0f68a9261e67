"""The benchmark scripts' pieces that their figures rest on, and their pages: profile_epoch.py's
HLO shape table; bench_cli_errors.py's cases, each a one-line error reported before JAX is
imported; `--page FILE` (benchmarks/page_option.py) writing what a script printed under the
machine, date, commit and command header, run on the two cheapest scripts."""

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_cli_errors  # noqa: E402
import page_option  # noqa: E402
from profile_epoch import op_shapes  # noqa: E402


def test_op_shapes_reads_the_result_shape_of_each_instruction():
    def fn(x, y):
        return jnp.tanh(x @ y).sum(axis=0), x * 2.0

    compiled = jax.jit(fn).lower(jnp.ones((6, 4)), jnp.ones((4, 3))).compile()
    shapes = op_shapes(compiled.as_text())
    assert set(shapes.values()) >= {"f32[6,4]", "f32[3]"}
    root = [name for name, shape in shapes.items() if shape.startswith("(f32[3]")]
    assert root, shapes  # the tuple of the two results, layouts stripped
    assert all("{" not in shape for shape in shapes.values())


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def assert_page(page: Path, title: str, printed: str, command: list[str]) -> None:
    """The page: its title, the generated-file note, the machine, date + commit and command
    lines, then exactly the printed text in a text block."""
    lines = page.read_text().splitlines()
    assert lines[0] == f"# {title}"
    assert lines[2].startswith("<!-- Generated")
    assert lines[4].startswith("- machine: ") and " cores; devices: " in lines[4]
    assert lines[5].startswith("- date: ") and "; commit: " in lines[5]
    assert lines[6] == f"- command: `{' '.join(command)}`"
    assert lines[8:] == ["```text", *printed.strip("\n").splitlines(), "```"]


def test_bench_cli_errors_cases_fail_before_jax_starts_and_its_page_holds_the_table(tmp_path):
    page = tmp_path / "pages" / "cli-errors.md"
    proc = run_script("bench_cli_errors.py", "--repeats", "1", "--page", str(page))
    rows = proc.stdout.strip().splitlines()[1:]
    assert len(rows) == len(bench_cli_errors.CASES)
    assert all(row.endswith("JAX imported: no") for row in rows), rows
    command = ["python", "benchmarks/bench_cli_errors.py", "--repeats", "1", "--page", str(page)]
    assert_page(page, "Bad-input latency", proc.stdout, command)


def test_bench_planted_prints_each_kind_at_its_rate_and_writes_its_page(tmp_path):
    page = tmp_path / "planted.md"
    args = ["--kinds", "uniform,exposure", "--users", "400", "--items", "60"]
    args += ["--interactions", "1000", "--repeats", "1", "--page", str(page)]
    proc = run_script("bench_planted.py", *args)
    rows = [line.split() for line in proc.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["uniform", "exposure"]
    assert [float(row[2]) for row in rows] == [0.3, 0.3]  # the noisy share, exact by design
    assert_page(
        page,
        "Planted-noise generator",
        proc.stdout,
        ["python", "benchmarks/bench_planted.py", *args],
    )


def test_a_failed_run_writes_no_page_and_no_page_is_written_without_the_option(tmp_path):
    page = tmp_path / "page.md"
    with pytest.raises(RuntimeError), page_option.printed_page(page, "title", ["x"]):
        print("half a table")
        raise RuntimeError
    assert not page.exists()
    with page_option.printed_page(None, "title"):
        print("a table")
    assert list(tmp_path.iterdir()) == []


def test_the_speed_page_bounds_by_hand():
    from speed_page import bounds

    # 40 steps × a 2 ms update; 1,000 users × 500 items: scores 2 × 4 B each at 1 GB/s = 4 ms
    # against 2 × (32 + 0) flops each at 10 GFLOP/s = 3.2 ms.
    row = {"steps": 40, "update": 2e-3, "users": 1000, "items": 500, "pair_flops": 64}
    epoch, evaluation = bounds(row, bandwidth=1e9, peak=1e10)
    assert epoch == pytest.approx(40 * 2e-3)
    assert evaluation == pytest.approx(4e-3)
    # Wider embeddings make the dot products the bound: 2 × 4,096 flops a pair → 0.41 s.
    row["pair_flops"] = 2 * 4096
    assert bounds(row, 1e9, 1e10)[1] == pytest.approx(1000 * 500 * 8192 / 1e10)


def test_the_update_probe_times_the_adam_step_and_grows_with_the_table():
    from speed_page import update_seconds

    small = update_seconds({"table": jnp.zeros((1000, 8))}, repeats=3)
    large = update_seconds({"table": jnp.zeros((400_000, 64))}, repeats=3)
    assert 0 < small < large  # 3,200× the bytes: more time, whatever the machine
