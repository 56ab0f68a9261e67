"""Load a finished (or checkpointed) run directory back: spec, data, models and parameters.

Used by the commands that work on a trained run (`dprec-recommend`, `dprec-denoise-report`,
`dprec-plots`) and from notebooks.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from dprec.config.run_config import run_spec_from_config
from dprec.data.dataset import InteractionData
from dprec.data.registry import load_dataset
from dprec.errors import UserInputError
from dprec.pair_scores import role_logits, score_pairs
from dprec.runs import rundir
from dprec.runs.checkpoint import RunCheckpoints
from dprec.specs import RunSpec
from dprec.state import TrainState
from dprec.train import Setup, create_setup


@dataclasses.dataclass
class LoadedRun:
    """A run directory with its trained parameters.

    best_params: every trained role's parameters at the best validation epoch (so far, for an
    unfinished run); state: the restored state of the last checkpointed epoch.
    """

    path: Path
    spec: RunSpec
    data: InteractionData
    setup: Setup
    best_params: dict[str, Any]
    state: TrainState
    epoch: int  # the last checkpointed epoch
    finished: bool  # the run wrote its results (else it stopped at `epoch`)

    def output_name(self, name: str) -> str:
        """`name` for a file made from this run: an unfinished run's epoch goes into it
        (`recommendations.csv` → `recommendations.epoch3.csv`), so it never passes for the
        finished run's."""
        if self.finished:
            return name
        stem, dot, suffix = name.partition(".")
        return f"{stem}.epoch{self.epoch}{dot}{suffix}"

    def target_logits(self, users, items):
        """f's logits for pairs (arrays `[N]`) with the best-epoch parameters (notebooks)."""
        logits = role_logits(self.setup.roles.score["target"])
        return logits(self.best_params["target"], self.setup.graph, users, items)

    def training_logits(self) -> np.ndarray:
        """f's logits `[N]` on every training interaction (best-epoch parameters)."""
        train = self.data.train
        logits = role_logits(self.setup.roles.score["target"])
        return score_pairs(
            logits, self.best_params["target"], self.setup.graph, train.users, train.items
        )


def load_run(workdir: str | Path, *, allow_unfinished: bool = False) -> LoadedRun:
    """Rebuild the run in `workdir` from its config.json and last checkpoint.

    A run is finished when it wrote results.json; an unfinished one (stopped or killed before
    its last epoch) is refused unless `allow_unfinished`.

    Raises:
      UserInputError: no such run directory, no checkpoint yet, an unfinished run, or data
        that changed since the run.
    """
    path = Path(workdir)
    config_file = path / rundir.CONFIG_FILE
    if not config_file.is_file():
        raise UserInputError(f"{path} is not a run directory (no config.json); pass --workdir DIR")
    spec = run_spec_from_config(json.loads(config_file.read_text()))
    checkpoints = RunCheckpoints(path)
    try:
        epoch = checkpoints.latest_epoch()
        if epoch is None:
            raise UserInputError(f"{path} has no checkpoint; train it with --workdir first")
        finished = (path / rundir.RESULTS_FILE).is_file()
        if not finished and not allow_unfinished:
            raise UserInputError(
                f"{path} holds an unfinished run (last checkpoint: epoch {epoch} of "
                f"{spec.train.num_epochs}); rerun its training command to finish it, or pass "
                f"--allow-unfinished to use epoch {epoch}"
            )
        data = load_dataset(spec.data)
        rundir.check_same_data(path, data.fingerprint, data.summary())
        setup = create_setup(spec, data)  # frozen roles: placeholders the checkpoint overwrites
        epoch, state, best, _ = checkpoints.restore(setup.initial_state)
    finally:
        checkpoints.close()
    return LoadedRun(
        path=path,
        spec=spec,
        data=data,
        setup=setup,
        best_params=best,
        state=state,
        epoch=epoch,
        finished=finished,
    )
