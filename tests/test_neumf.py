"""NeuMF's split first tower layer: `W_u·e_u + (W_i·e_i + b)` equals `W·[e_u, e_i] + b`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from dprec.models import make_score_fns
from dprec.models.neumf import NeuMF
from dprec.specs import ModelSpec

N_USERS, N_ITEMS = 40, 30
SPEC = ModelSpec(name="neumf", embed_dim=8, init_std=0.01, mlp_embed_dim=16, mlp_layers=(16, 8))


def concat_pair_logits(model: NeuMF, users: jax.Array, items: jax.Array) -> jax.Array:
    """The textbook NeuMF (He et al., 2017): the concatenation through the whole tower."""
    gmf = model.gmf_user(users) * model.gmf_item(items)
    hidden = jnp.concatenate([model.mlp_user(users), model.mlp_item(items)], axis=-1)
    for layer in model.tower:
        hidden = jax.nn.relu(layer(hidden))
    return model.predict(jnp.concatenate([gmf, hidden], axis=-1))[..., 0]


@pytest.fixture(scope="module")
def model_and_params():
    model = NeuMF(N_USERS, N_ITEMS, SPEC, rngs=nnx.Rngs(3))
    graphdef, state = nnx.split(model)
    # Away from the near-zero init, so that every ReLU sees both signs.
    params = jax.tree.map(lambda x: x * 30.0, nnx.to_pure_dict(state))
    return graphdef, params


def pairs(n_pairs: int) -> tuple[jax.Array, jax.Array]:
    """`n_pairs` (user, item) pairs with repeats: fewer pairs than items take the per-pair
    path of the first layer, more take the whole-item-table path."""
    rng = np.random.default_rng(n_pairs)
    return jnp.asarray(rng.integers(0, N_USERS, n_pairs)), jnp.asarray(
        rng.integers(0, N_ITEMS, n_pairs)
    )


@pytest.mark.parametrize("n_pairs", [5, 3 * N_ITEMS])
def test_pair_logits_equal_the_concat_formula(model_and_params, n_pairs):
    graphdef, params = model_and_params
    model = nnx.merge(graphdef, params)
    users, items = pairs(n_pairs)
    np.testing.assert_allclose(
        model.pair_logits(None, users, items),
        concat_pair_logits(model, users, items),
        rtol=1e-5,
        atol=1e-5,
    )


def test_all_item_logits_equal_the_concat_formula(model_and_params):
    """Every (user, item) of the table, with the item half precomputed by `encode` and not."""
    graphdef, params = model_and_params
    model = nnx.merge(graphdef, params)
    users = jnp.array([0, 7, 39])
    grid_users = jnp.repeat(users, N_ITEMS)
    grid_items = jnp.tile(jnp.arange(N_ITEMS), users.shape[0])
    expected = concat_pair_logits(model, grid_users, grid_items).reshape(3, N_ITEMS)
    encoded = model.encode(None, None)
    assert encoded.shape == (N_ITEMS, SPEC.mlp_layers[0])
    for table in (model.all_item_logits(encoded, users), model.all_item_logits(None, users)):
        np.testing.assert_allclose(table, expected, rtol=1e-5, atol=1e-5)
    # Same rankings: the top items of every user in the same order.
    np.testing.assert_array_equal(
        jax.lax.top_k(model.all_item_logits(encoded, users), 10)[1],
        jax.lax.top_k(expected, 10)[1],
    )


def test_training_encode_is_none(model_and_params):
    """With an rng (training), nothing is precomputed: a step reads table rows only."""
    graphdef, params = model_and_params
    assert make_score_fns(graphdef).encode(params, None, jax.random.key(0)) is None


@pytest.mark.parametrize("n_pairs", [6, 3 * N_ITEMS])
def test_gradients_equal_the_concat_formula(model_and_params, n_pairs):
    graphdef, params = model_and_params
    users, items = pairs(n_pairs)
    weights = jnp.linspace(-1.0, 1.0, users.shape[0])

    def loss(params, logits_fn):
        return jnp.sum(weights * logits_fn(nnx.merge(graphdef, params), users, items))

    split = jax.grad(loss)(params, lambda m, u, i: m.pair_logits(None, u, i))
    concat = jax.grad(loss)(params, concat_pair_logits)

    def close(a, b):
        # Summed in another order (per item, then through the layer): float32 rounding of
        # sums of many terms, relative to the leaf's scale.
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))

    jax.tree.map(close, split, concat)
