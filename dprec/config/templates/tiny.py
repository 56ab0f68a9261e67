"""A tiny synthetic run for smoke tests (a few seconds): 300 users, 80 items, 3 epochs."""

from dprec.config.presets import build_config


def get_config(arg: str | None = None):
    config = build_config(arg)
    config.data.synthetic.n_users = 300
    config.data.synthetic.n_items = 80
    config.train.num_epochs = 3
    config.train.batch_size = 256
    # Every test run fits these: iALS's 16-point grid (about a second here) is left out.
    config.eval.references = ("popularity", "itemknn", "rp3beta", "ease")
    return config
