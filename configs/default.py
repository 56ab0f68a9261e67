"""Config entry: `--config=configs/default.py[:dataset=NAME,model=NAME,method=NAME]`.

With no argument: the quickstart on the synthetic default dataset. Any field can then be
overridden, e.g. `--config.train.num_epochs=5 --config.eval.ks=10,50`. The package ships the
same entry (`dprec/config/templates/default.py`) for installs without this folder.
"""

from dprec.config.templates.default import get_config

__all__ = ["get_config"]
