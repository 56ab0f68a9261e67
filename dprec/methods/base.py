"""`Method`: everything a training method decides, in one object per method.

A method owns the roles it trains and their models, its per-batch loss (one signature for
every method: `loss_fn(trainable, frozen, batch, graph, rng, step)`), the roles it steps only
in one DP/DN phase, its negative sampler, its frozen roles (the DVAE prior) and how they are
pretrained, its noise score for the noisy-interaction report, and its card (`cards.MethodCard`:
name, label, presets, and its config fields with their defaults, ranges and tune spaces). The
library asks the method; it never compares method names.

Method state (DCF's loss history, CrossDenoise's entity losses, PD's popularity, the
exposure-aware DPI's log popularity): a method that is `stateful(spec)` (by default its
`has_method_state`; DPI/DVAE only with `exposure_power` > 0) gives its initial pytree
(`init_method_state`), its loss takes that state as a last argument and returns the updated
one beside its logs, and `make_end_epoch` may update it once per epoch; it lives in
`TrainState.method_state`, so checkpoints carry it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import numpy as np
import optax

from dprec import steps
from dprec.lazy_rows import Tables
from dprec.methods.cards import MethodCard
from dprec.methods.common import LossFn, Regularizer, make_regularizer
from dprec.methods.roles import Roles, create_roles
from dprec.models import BATCH_ENCODED, GRAPH_MODELS, row_tables
from dprec.pair_scores import score_pairs
from dprec.specs import ModelSpec, RunSpec

# (params by role, graph, users [N], items [N]) -> score [N]
PairScoreFn = Callable[[dict[str, Any], Any, jax.Array, jax.Array], jax.Array]


class Method:
    """A training method. Subclasses set the class attributes and override what differs.

    card: what the config layer knows of it (`cards.MethodCard`: name, label, the fields it
    reads with their defaults, ranges and tune spaces, its presets), readable without JAX.
    phase_roles: phase id (`steps.DP`, `steps.DN`) → the role stepped only in that phase.
    """

    card: ClassVar[MethodCard]
    # scores how likely each training interaction is a real positive: writes the noise report
    is_denoising: ClassVar[bool] = False
    has_method_state: ClassVar[bool] = False  # keeps a method state (see above, `stateful`)
    phase_roles: ClassVar[Mapping[int, str]] = {}

    @property
    def name(self) -> str:
        """The registry and config name."""
        return self.card.name

    @property
    def label(self) -> str:
        """The name in tables and figures."""
        return self.card.label

    @property
    def config_fields(self) -> tuple[str, ...]:
        """The names of the method fields it reads (`spec.method.<name>`)."""
        return self.card.config_fields

    def role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        """Trained role → its model, in the order their init keys are drawn."""
        return {"target": spec.model}

    def frozen_role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        """Frozen (never trained) role → its model; e.g. DVAE's prior f'."""
        del spec
        return {}

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        raise NotImplementedError

    def norm_l2_scale(self, spec: RunSpec) -> float:
        """The scale of a "norm" L2 term (CDAE). The authors add λ0·Σ‖θ_t‖ to a batch-*summed*
        BCE in normal training; dprec's losses are batch means, so λ0 is divided by the
        examples per batch to keep its meaning."""
        return 1.0 / (spec.train.batch_size * (1 + spec.train.num_negatives))

    def phase_of(self, spec: RunSpec) -> Callable[[Any], Any] | None:
        """`step → phase` for methods with phase roles (a Python int for a fixed phase)."""
        del spec
        return None

    def negative_probs(self, spec: RunSpec, data: Any) -> np.ndarray | None:
        """Item distribution `[n_items]` of sampled negatives; None: uniform."""
        del spec, data
        return None

    def make_noise_score(self, roles: Roles) -> PairScoreFn:
        """The score of the noisy-interaction report: P(r=1 | r̃=1) for denoising methods,
        the model's own probability σ(f) for the others."""
        score = roles.score["target"]

        def probability(params, graph, users, items):
            target = params["target"]
            return jax.nn.sigmoid(
                score.pair(target, score.encode(target, graph, None), users, items)
            )

        return probability

    def stateful(self, spec: RunSpec) -> bool:
        """Whether the loss takes and returns the method state (`has_method_state`; a method
        whose state depends on its settings overrides this)."""
        del spec
        return self.has_method_state

    def init_method_state(self, spec: RunSpec, data: Any) -> Any:
        """The method's state at step 0 (a pytree); `{}` for a method without one."""
        del spec, data
        return {}

    def make_end_epoch(self, spec: RunSpec, data: Any) -> Callable[[Any], Any] | None:
        """`method_state -> method_state` run (jitted) at the end of every epoch, or None."""
        del spec, data
        return None

    def real_positive_scores(
        self,
        spec: RunSpec,
        roles: Roles,
        params: dict[str, Any],
        method_state: Any,
        data: Any,
        graph: Any,
    ) -> np.ndarray:
        """The noise report's score `[n_train]` of every training interaction, in [0, 1],
        higher = more likely a real positive: `make_noise_score` on the training pairs
        (methods with a per-interaction state read it from `method_state` instead)."""
        del spec, method_state
        train = data.train
        return score_pairs(self.make_noise_score(roles), params, graph, train.users, train.items)

    def pretrain_frozen(
        self, spec: RunSpec, data: Any, *, fit_fn: Callable[..., Any]
    ) -> dict[str, Any]:
        """The frozen roles' parameters for a run of `spec` (`fit_fn` is `train.fit`)."""
        del spec, data, fit_fn
        return {}

    # Derived from the above: not overridden.

    def all_role_models(self, spec: RunSpec) -> dict[str, ModelSpec]:
        return {**self.role_models(spec), **self.frozen_role_models(spec)}

    def uses_graph(self, spec: RunSpec) -> bool:
        """Whether any model of the run reads the training adjacency (CDAE, LightGCN)."""
        return any(m.name in GRAPH_MODELS for m in self.all_role_models(spec).values())

    def batch_encoded(self, spec: RunSpec) -> bool:
        """Whether any model of the run encodes a step's batch users only (CDAE, LightGCN)."""
        return any(m.name in BATCH_ENCODED for m in self.all_role_models(spec).values())

    def needs_touched_rows(self, spec: RunSpec) -> bool:
        """Whether the batches carry their touched rows (`data.touched`): the lazy mode's row
        tables, and a batch-encoded model's users in either mode."""
        return bool(self.lazy_tables(spec)) or self.batch_encoded(spec)

    def needs_touched_items(self, spec: RunSpec) -> bool:
        """Whether touched rows include the item lists: only the lazy mode restricts item
        tables (a batch-encoded model in the dense mode reads its batch's users only)."""
        return bool(self.lazy_tables(spec))

    def lazy_tables(self, spec: RunSpec) -> dict[str, Tables]:
        """Role → row tables updated lazily: empty unless `train.updates` is "lazy", and only
        for roles whose model reads one row of them per pair (MF, GMF, NeuMF; CDAE's user
        table V, which a step reads for its batch's users only)."""
        if spec.train.updates != "lazy":
            return {}
        return {
            role: tables
            for role, model in self.all_role_models(spec).items()
            if (tables := row_tables(model.name))
        }

    def create_roles(
        self,
        spec: RunSpec,
        n_users: int,
        n_items: int,
        key: jax.Array,
        frozen: Mapping[str, Any] | None = None,
    ) -> Roles:
        """Initial parameters and scoring functions of every role; `frozen` None gives the
        frozen roles shape-only placeholders (to restore a checkpoint into, or to time)."""
        return create_roles(
            self.role_models(spec),
            self.frozen_role_models(spec),
            n_users,
            n_items,
            key,
            frozen=frozen,
        )

    def make_train_step(
        self, spec: RunSpec, roles: Roles, optimizer: optax.GradientTransformation, *, n_users
    ) -> steps.TrainStep:
        """The method's train step: its loss, its phase roles and its lazy tables."""
        regularizer = make_regularizer(
            spec.model.name,
            rule=spec.train.l2_rule,
            lambda0=spec.train.l2,
            n_users=n_users,
            norm_scale=self.norm_l2_scale(spec),
        )
        return steps.make_train_step(
            self.make_loss(spec, roles, regularizer),
            optimizer,
            tables=self.lazy_tables(spec),
            phase_roles=self.phase_roles,
            phase_of=self.phase_of(spec),
            stateful=self.stateful(spec),
        )
