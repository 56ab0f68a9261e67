"""Config entry: `--config=configs/recsys25.py[:model=gmf|neumf,method=CELL]`, the RecSys'25
re-evaluation's ML-100k protocol (docs/protocol.md, "The RecSys'25 protocol"). The package
ships the same entry (`dprec/config/templates/recsys25.py`) for installs without this folder.
"""

from dprec.config.templates.recsys25 import get_config

__all__ = ["get_config"]
