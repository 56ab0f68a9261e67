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
from dprec.train import Setup, create_setup


@dataclasses.dataclass
class LoadedRun:
    """A run directory with its trained parameters.

    best_params: every trained role's parameters at the best validation epoch;
    setup.initial_state is the restored last state.
    """

    path: Path
    spec: RunSpec
    data: InteractionData
    setup: Setup
    best_params: dict[str, Any]
    epoch: int  # the last checkpointed epoch

    def target_logits(self, users, items):
        """f's logits for pairs (arrays `[N]`) with the best-epoch parameters."""
        logits = role_logits(self.setup.roles.score["target"])
        return logits(self.best_params["target"], self.setup.graph, users, items)

    def training_logits(self) -> np.ndarray:
        """f's logits `[N]` on every training interaction (best-epoch parameters)."""
        train = self.data.train
        logits = role_logits(self.setup.roles.score["target"])
        return score_pairs(
            logits, self.best_params["target"], self.setup.graph, train.users, train.items
        )


def load_run(workdir: str | Path) -> LoadedRun:
    """Rebuild the run in `workdir` from its config.json and last checkpoint.

    Raises:
      UserInputError: no such run directory, or it has no checkpoint yet.
    """
    path = Path(workdir)
    config_file = path / rundir.CONFIG_FILE
    if not config_file.is_file():
        raise UserInputError(f"{path} is not a run directory (no config.json); pass --workdir DIR")
    spec = run_spec_from_config(json.loads(config_file.read_text()))
    checkpoints = RunCheckpoints(path)
    if checkpoints.latest_epoch() is None:
        raise UserInputError(f"{path} has no checkpoint; train it with --workdir first")
    data = load_dataset(spec.data)
    setup = create_setup(spec, data)  # frozen roles: placeholders the checkpoint overwrites
    try:
        epoch, state, best, _ = checkpoints.restore(setup.initial_state)
    finally:
        checkpoints.close()
    setup = dataclasses.replace(setup, initial_state=state)
    return LoadedRun(path=path, spec=spec, data=data, setup=setup, best_params=best, epoch=epoch)
