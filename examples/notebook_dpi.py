"""DPI from a notebook: data, model, training and evaluation through library functions only.

    python examples/notebook_dpi.py        # or paste the cells into a notebook

No flags and no config files: specs are plain frozen dataclasses.
"""

# %% 1. Data: the embedded synthetic generator (or `DataSpec(name="table", path=..., ...)`).
import dataclasses

import jax
import numpy as np

from dprec import specs, train
from dprec.config import run_config
from dprec.data.registry import load_dataset

data_spec = specs.DataSpec(
    name="synthetic",
    columns=specs.ColumnSpec(rating="rating", truth="truth"),
    synthetic=specs.SyntheticSpec(n_users=1500, n_items=300),
)
data = load_dataset(data_spec)
print(data.summary())

# %% 2. The run: GMF trained with DPI (C1 = C2 = 10, α = 0), 30 epochs.
spec = specs.RunSpec(
    seed=0,
    data=data_spec,
    model=specs.ModelSpec(name="gmf"),
    method=specs.MethodSpec(name="dpi", c1=10.0, c2=10.0, alpha=0.0),
    train=specs.TrainSpec(num_epochs=30, batch_size=512, l2=0.01),
    # Only the popularity ranker as a reference row here; add "ease", "ials", ... to see
    # where the run stands against the stronger ones (docs/references.md).
    eval=specs.EvalSpec(ks=(5, 20), references=("popularity",)),
)
run_config.validate_run_spec(spec)

# %% 3. Train: `fit` runs the jitted epochs, validates each epoch and tests at the best one.
fitted = train.fit(spec, data)
print("best epoch", fitted.results["best_epoch"])
print("test (paper protocol)", fitted.results["test"]["paper"])
print("popularity", fitted.results["test"]["popularity_paper"])

# %% 4. Score anything with the trained target model's pure functions.
target = fitted.setup.roles.score["target"]
params = fitted.best_params["target"]
encoded = target.encode(params, fitted.setup.graph, None)
scores = target.all_items(params, encoded, jax.numpy.arange(3))  # [3, n_items]
print("top items of users 0-2:", np.argsort(-np.asarray(scores), axis=1)[:, :5])

# %% 5. Which training interactions look noisy? P(r=1 | r̃=1) per interaction.
from dprec.evaluation import noise_scores  # noqa: E402

setup = fitted.setup
table = noise_scores.real_positive_table(
    spec,
    setup.method,
    setup.roles,
    fitted.best_params,
    data,
    setup.graph,
    fitted.state.method_state,
)
print(noise_scores.summarize_table(table))

# %% 6. A variation: the same run with normal training, for comparison.
normal = train.fit(dataclasses.replace(spec, method=specs.MethodSpec(name="normal")), data)
print("normal, last epoch", normal.results["test_last"]["paper"])
print("DPI, last epoch", fitted.results["test_last"]["paper"])
