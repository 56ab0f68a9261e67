"""Normal training: BCE on the interactions (positives) and on sampled negatives."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dprec.methods.base import Method
from dprec.methods.common import Batch, LossFn, Regularizer, pair_logits
from dprec.models import ScoreFns
from dprec.objectives.bce import bce
from dprec.objectives.reduce import masked_mean
from dprec.roles import Roles
from dprec.specs import RunSpec


def make_normal_loss(target: ScoreFns, regularizer: Regularizer) -> LossFn:
    """Mean BCE on positives + mean BCE on negatives + the L2 term."""

    def loss_fn(trainable: dict[str, Any], frozen, batch: Batch, graph, rng: jax.Array, step):
        del frozen, step
        pos, neg = pair_logits(target, trainable["target"], batch, graph, rng)
        pos_loss = masked_mean(bce(logits=pos, labels=jnp.ones_like(pos)), batch["mask"])
        neg_loss = masked_mean(bce(logits=neg, labels=jnp.zeros_like(neg)), batch["mask"])
        l2 = regularizer(trainable["target"])
        loss = pos_loss + neg_loss + l2
        return loss, {"loss": loss, "pos_loss": pos_loss, "neg_loss": neg_loss, "l2": l2}

    return loss_fn


class Normal(Method):
    name = "normal"
    label = "Normal"
    # PROTOCOL.md: (λ0, epochs) of normal training per (dataset, model).
    presets = {
        ("modcloth", "gmf"): {"l2": 0.1, "num_epochs": 40},
        ("modcloth", "neumf"): {"l2": 10.0, "num_epochs": 40},
        ("modcloth", "cdae"): {"l2": 1.0, "num_epochs": 40},
        ("modcloth", "lightgcn"): {"l2": 0.1, "num_epochs": 40},
        ("electronics", "gmf"): {"l2": 0.01, "num_epochs": 10},
        ("electronics", "neumf"): {"l2": 100.0, "num_epochs": 10},
        ("electronics", "cdae"): {"l2": 0.1, "num_epochs": 15},
        ("electronics", "lightgcn"): {"l2": 0.01, "num_epochs": 10},
        ("adressa", "gmf"): {"l2": 0.01, "num_epochs": 10},
        ("adressa", "neumf"): {"l2": 1.0, "num_epochs": 10},
        ("adressa", "cdae"): {"l2": 1.0, "num_epochs": 50},
        ("adressa", "lightgcn"): {"l2": 0.01, "num_epochs": 15},
        ("synthetic", "*"): {"l2": 0.01},
    }

    def make_loss(self, spec: RunSpec, roles: Roles, regularizer: Regularizer) -> LossFn:
        del spec
        return make_normal_loss(roles.score["target"], regularizer)


METHOD = Normal()
