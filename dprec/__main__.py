"""`python -m dprec TOOL [ARGS]`: every command of the package by name (`python -m dprec` lists
them). Each is also a console script, `dprec-TOOL`, and a module, `python -m MODULE`."""

from __future__ import annotations

import importlib
import sys

# tool → (module with a `main(argv) -> int` or, for train, `run()`, one line of help)
TOOLS = {
    "train": ("dprec.main", "train and evaluate one run (flags: --config, --workdir)"),
    "tune": ("dprec.sweeps.tune", "tune a method on the noisy validation split (Optuna)"),
    "grid": ("dprec.sweeps.grid", "expand a grid into runs, run or script them, select the best"),
    "noise-bench": ("dprec.sweeps.noise_bench", "the planted-noise benchmark"),
    "report": ("dprec.tools.report", "tables of finished runs, mean ± std over seeds"),
    "recommend": ("dprec.tools.recommend", "top-K recommendations of a finished run"),
    "denoise-report": ("dprec.tools.denoise_report", "which training interactions look noisy"),
    "plots": ("dprec.tools.plots", "the paper's figures from run directories"),
    "profile-data": ("dprec.tools.profile_data", "a dataset's statistics before training"),
}


def _usage() -> str:
    width = max(map(len, TOOLS))
    lines = [f"  {name:<{width}}  {doc}" for name, (_, doc) in TOOLS.items()]
    return "usage: python -m dprec TOOL [ARGS]  (or dprec-TOOL [ARGS])\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in TOOLS:
        print(f"dprec: error: unknown tool {name!r}; one of {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(TOOLS[name][0])
    if name == "train":  # absl's app.run reads sys.argv itself
        sys.argv = [f"dprec-{name}", *rest]
        module.run()
        return 0
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
