"""Config entry: `--config=configs/default.py[:dataset=NAME,model=NAME,method=NAME]`.

With no argument: the quickstart on the synthetic default dataset. Any field can then be
overridden, e.g. `--config.train.num_epochs=5 --config.eval.ks=10,50`.
"""

from dprec.config.presets import build_config


def get_config(arg: str | None = None):
    return build_config(arg)
