"""Load a finished (or checkpointed) run directory back: spec, data, models and parameters.

Used by the commands that work on a trained run (`dprec.recommend`, `dprec.denoise_report`,
`dprec.plots`) and from notebooks.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax

from dprec import metrics_io
from dprec.checkpoint import RunCheckpoints
from dprec.data.dataset import InteractionData
from dprec.data.registry import load_dataset
from dprec.errors import UserInputError
from dprec.models import init_model
from dprec.specs import RunSpec, run_spec_from_config
from dprec.train import Setup, create_setup


@dataclasses.dataclass
class LoadedRun:
    """A run directory with its trained parameters.

    best_params: every trained role's parameters at the best validation epoch.
    """

    path: Path
    spec: RunSpec
    data: InteractionData
    setup: Setup
    best_params: dict[str, Any]
    epoch: int  # the last checkpointed epoch

    def target_logits(self, users, items):
        """f's logits for pairs (arrays `[N]`) with the best-epoch parameters."""
        score = self.setup.roles.score["target"]
        params = self.best_params["target"]
        return score.pair(params, score.encode(params, self.setup.graph, None), users, items)


def load_run(workdir: str | Path) -> LoadedRun:
    """Rebuild the run in `workdir` from its config.json and last checkpoint.

    Raises:
      UserInputError: no such run directory, or it has no checkpoint yet.
    """
    path = Path(workdir)
    config_file = path / metrics_io.CONFIG_FILE
    if not config_file.is_file():
        raise UserInputError(f"{path} is not a run directory (no config.json); pass --workdir DIR")
    spec = run_spec_from_config(json.loads(config_file.read_text()))
    checkpoints = RunCheckpoints(path)
    if checkpoints.latest_epoch() is None:
        raise UserInputError(f"{path} has no checkpoint; train it with --workdir first")
    data = load_dataset(spec.data)
    prior_like = None
    if spec.method.name == "dvae":  # shape only: the checkpoint holds the real prior
        _, prior_like = init_model(spec.model, data.n_users, data.n_items, jax.random.key(0))
    setup = create_setup(spec, data, prior_params=prior_like)
    epoch, state, best, _ = checkpoints.restore(setup.state)
    setup = dataclasses.replace(setup, state=state)
    return LoadedRun(path=path, spec=spec, data=data, setup=setup, best_params=best, epoch=epoch)
