"""Config entry: `--config=configs/recsys25.py[:model=gmf|neumf,method=CELL]`.

The RecSys'25 re-evaluation's ML-100k protocol (`dprec.config.recsys25`): their split read as
an own table, their fixed hyper-parameters per (model, method), selection by the smallest
noisy-validation loss and the clean test logged every epoch. CELL is one of erm, erm_re, tce,
rce, udt, dcf, dpi (their DeCA) and dvae (their DeCA(p)); erm_re is normal training picked by
the trimmed validation loss. Any field can be overridden afterwards.
"""

from dprec.config import recsys25
from dprec.config.presets import build_config
from dprec.data.registry import data_dir


def get_config(arg: str | None = None):
    model, cell = recsys25.parse_choice(arg)
    method = recsys25.DPREC_METHODS[cell]
    config = build_config(f"dataset=table,model={model},method={method}")
    # After build_config: DVAE's card fills prior_epochs and prior_l2 from the normal preset,
    # which an own table does not have; the re-evaluation's values replace them here.
    recsys25.set_dotted(config, recsys25.settings(model, cell))
    config.data.path = recsys25.data_path(data_dir())
    return config
