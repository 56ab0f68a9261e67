"""The device suite: what a user runs on a GPU or TPU, checked and timed in one command.

    python benchmarks/device_suite.py [--tiny] [--models gmf,neumf,cdae,lightgcn,mf]
        [--methods normal,dpi] [--epochs 3] [--scale] [--no-multiprocess]
        [--page docs/benchmarks/device-suite.md]
    JAX_PLATFORMS=cuda python benchmarks/device_suite.py --page docs/benchmarks/device-suite.md

On this process's devices (JAX_PLATFORMS picks them), with reference recommenders off:
1. **cells**: every model × method on Modcloth (`--tiny`: a 300-user synthetic table), one
   `train.fit` of `--epochs` epochs each: the first epoch (compilation included), the median
   later epoch, one test evaluation of the best parameters (timed after `fit` compiled it) and
   the test R@20;
2. **same seed on the CPU**: GMF-DPI rerun in a subprocess with JAX_PLATFORMS=cpu; its test
   R@20 and N@20 must match this process's within CROSS_BACKEND_TOL (the backends sum floats
   in another order; the data, the negatives and the initialisation are the same);
3. **sharded equals unsharded**: GMF-DPI with row-sharded tables over every local device
   against one device, within SHARDED_TOL;
4. **multi-process** (more than one local device, CPU or GPU, not `--tiny`): GMF-DPI as two
   processes on localhost, each with half the devices, against the one-process run;
5. **scale** (`--scale`): one epoch of GMF-DPI and LightGCN-DPI (lazy updates) at
   synthetic-Electronics scale (1.16 M users).

Prints the device, driver and versions, one table of timings and one of checks; exits 1 if a
check fails. `--tiny` is CI's mode on the CPU, so that the suite cannot rot: every model and
method on the tiny table, the CPU and sharded checks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from page_option import add_page_option, printed_page

REPO = Path(__file__).resolve().parents[1]
MODELS = "gmf,neumf,cdae,lightgcn,mf"
METHODS = "normal,dpi"
# Absolute differences of test R@20 / N@20 accepted between two runs of the same seed.
CROSS_BACKEND_TOL = 5e-3  # CPU against an accelerator: other summation orders over 3 epochs
SHARDED_TOL = 1e-3  # row-sharded against one device (reductions over devices)
TINY_SETTINGS = {
    "data.synthetic.n_users": 300,
    "data.synthetic.n_items": 80,
    "train.batch_size": 256,
}
METRICS = ("recall@20", "ndcg@20")


def preset(tiny: bool, model: str, method: str) -> str:
    dataset = "synthetic" if tiny else "modcloth"
    return f"dataset={dataset},model={model},method={method}"


def settings(tiny: bool, epochs: int, extra: dict | None = None) -> dict:
    """The overrides of every run: epochs, no reference recommenders, the tiny table."""
    base = {"train.num_epochs": epochs, "eval.references": ()}
    return {**base, **(TINY_SETTINGS if tiny else {}), **(extra or {})}


def build(preset_arg: str, overrides: dict):
    """(spec, data) of a preset with overrides (typed values)."""
    from dprec.config.presets import build_config
    from dprec.config.recsys25 import set_dotted
    from dprec.config.run_config import run_spec_from_config
    from dprec.data.registry import load_dataset

    config = build_config(preset_arg)
    set_dotted(config, overrides)
    spec = run_spec_from_config(config)
    return spec, load_dataset(spec.data)


def flags(preset_arg: str, overrides: dict) -> list[str]:
    """The same run as `python -m dprec.main` flags."""

    def text(value):
        return "()" if value == () else str(value)

    return [f"--config=configs/default.py:{preset_arg}"] + [
        f"--config.{key}={text(value)}" for key, value in overrides.items()
    ]


def fit_cell(preset_arg: str, overrides: dict, mesh=None) -> dict:
    """One fit: per-epoch seconds, evaluation seconds and the test metrics (paper view)."""
    from dprec import train

    spec, data = build(preset_arg, overrides)
    seconds: list[float] = []
    start = time.perf_counter()
    fitted = train.fit(spec, data, mesh=mesh, on_epoch=lambda r: seconds.append(r["epoch_seconds"]))
    # One test evaluation of the best parameters, timed after fit compiled it (fit tests once).
    tic = time.perf_counter()
    fitted.setup.evaluator.test(fitted.best_params["target"])
    evaluation = time.perf_counter() - tic
    return {
        "first_epoch": seconds[0],
        "epoch": statistics.median(seconds[1:]) if len(seconds) > 1 else float("nan"),
        "eval": evaluation,
        "total": time.perf_counter() - start,
        "test": {m: fitted.results["test"]["paper"][m] for m in METRICS},
    }


def compare(name: str, got: dict, want: dict, tol: float) -> dict:
    worst = max(abs(got[m] - want[m]) for m in METRICS)
    return {"check": name, "max |Δ|": worst, "tolerance": tol, "ok": worst <= tol}


def run_main(args: list[str], env: dict, workdir: Path, timeout: int = 1200) -> dict:
    """`python -m dprec.main ARGS --workdir=WORKDIR`; its test metrics (paper view)."""
    proc = subprocess.run(
        [sys.executable, "-m", "dprec.main", *args, f"--workdir={workdir}"],
        cwd=REPO,
        env={
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dprec.main failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads((workdir / "results.json").read_text())["test"]["paper"]


def on_the_cpu(preset_arg: str, overrides: dict, folder: Path) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return run_main(flags(preset_arg, overrides), env, folder / "cpu")


def two_processes(preset_arg: str, overrides: dict, folder: Path, platform_name: str, count: int):
    """The run as two processes on localhost, each with half of `count` local devices; None
    where this platform cannot be split here."""
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        address = f"localhost:{sock.getsockname()[1]}"
    half = count // 2  # an odd count leaves its last device out of both processes
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    gpus = visible.split(",") if visible else [str(d) for d in range(count)]
    workdir = folder / "two"
    procs = []
    for index in range(2):
        env = dict(os.environ)
        if platform_name == "gpu":
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[index * half : (index + 1) * half])
        elif platform_name == "cpu":
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={half}"
        else:
            return None
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "-m",
            "dprec.main",
            *flags(preset_arg, overrides),
            f"--workdir={workdir}",
            "--num_processes=2",
            f"--process_id={index}",
            f"--coordinator_address={address}",
        ]
        procs.append(
            subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        )
    errors = [proc.communicate(timeout=1200)[1].decode()[-300:] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise RuntimeError(f"a process failed: {errors}")
    return json.loads((workdir / "results.json").read_text())["test"]["paper"]


def describe_devices() -> list[str]:
    from importlib import metadata

    import jax

    devices = jax.local_devices()
    lines = [
        f"devices: {len(devices)} × {devices[0].device_kind} ({devices[0].platform})",
        f"jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}, "
        f"python {platform.python_version()}",
    ]
    if shutil.which("nvidia-smi"):
        query = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        lines += [f"nvidia-smi: {line}" for line in query.stdout.strip().splitlines()]
    return lines


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CI's mode: a tiny synthetic table")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per cell (at least 2)")
    parser.add_argument("--scale", action="store_true", help="also 1.16 M-user epochs")
    parser.add_argument("--no-multiprocess", action="store_true", help="skip check 4")
    add_page_option(parser)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch compiles)")
    import jax

    from dprec import sharding

    with printed_page(args.page, "Device suite"), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("\n".join(describe_devices()))
        overrides = settings(args.tiny, args.epochs)
        rows, results = [], {}
        for model in args.models.split(","):
            for method in args.methods.split(","):
                cell = fit_cell(preset(args.tiny, model, method), overrides)
                results[(model, method)] = cell
                rows.append(
                    [
                        model,
                        method,
                        f"{cell['first_epoch']:.2f}",
                        f"{cell['epoch'] * 1000:.1f}",
                        f"{cell['eval'] * 1000:.1f}",
                        f"{cell['test']['recall@20']:.4f}",
                    ]
                )
                print(f"  {model} {method}: {cell['total']:.1f} s", flush=True)
        data_name = "tiny synthetic (300 users)" if args.tiny else "Modcloth"
        print(f"\n{data_name}, {args.epochs} epochs per cell, reference recommenders off")
        print(table(["model", "method", "epoch 1 s", "epoch ms", "test eval ms", "R@20"], rows))

        checks = []
        gmf_dpi = preset(args.tiny, "gmf", "dpi")
        device_run = results.get(("gmf", "dpi")) or fit_cell(gmf_dpi, overrides)
        checks.append(
            compare(
                "same seed on the CPU",
                on_the_cpu(gmf_dpi, overrides, folder),
                device_run["test"],
                CROSS_BACKEND_TOL,
            )
        )
        count = len(jax.local_devices())
        sharded = fit_cell(gmf_dpi, {**overrides, "train.shard_tables": True})
        one = fit_cell(gmf_dpi, overrides, mesh=sharding.create_mesh(1))
        checks.append(
            compare(f"sharded over {count} = one device", sharded["test"], one["test"], SHARDED_TOL)
        )
        platform_name = jax.local_devices()[0].platform
        if args.tiny or args.no_multiprocess or count < 2:
            why = (
                "--tiny"
                if args.tiny
                else "--no-multiprocess"
                if args.no_multiprocess
                else "1 device"
            )
            checks.append({"check": "two processes", "skipped": why})
        else:
            two = two_processes(gmf_dpi, overrides, folder, platform_name, count)
            if two is None:
                checks.append({"check": "two processes", "skipped": f"{platform_name}"})
            else:
                checks.append(compare("two processes", two, device_run["test"], SHARDED_TOL))
        if args.scale:
            for model in ("gmf", "lightgcn"):
                cell = fit_cell(
                    f"dataset=synthetic-electronics,model={model},method=dpi",
                    {"train.num_epochs": 2, "eval.references": (), "train.updates": "lazy"},
                )
                print(
                    f"scale {model}-dpi: epoch 1 {cell['first_epoch']:.1f} s, epoch 2 "
                    f"{cell['epoch']:.1f} s, test eval {cell['eval']:.1f} s"
                )
        lines = []
        for check in checks:
            if "skipped" in check:
                lines.append([check["check"], "–", "–", f"skipped ({check['skipped']})"])
            else:
                verdict = "ok" if check["ok"] else "FAILED"
                lines.append(
                    [
                        check["check"],
                        f"{check['max |Δ|']:.2e}",
                        f"{check['tolerance']:.0e}",
                        verdict,
                    ]
                )
        print("\nchecks (max |Δ| of test R@20 and N@20)")
        print(table(["check", "max |Δ|", "tolerance", "verdict"], lines))
        failed = [c for c in checks if c.get("ok") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
