"""The normalised adjacency and its sharded sparse products (4 simulated CPU devices)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import item_side_test_graph

from dprec import sharding
from dprec.graph.adjacency import normalized_edges, pad_edges, put_graph
from dprec.graph.propagate import adjacency_matmul, propagate

N_USERS, N_ITEMS, DIM = 23, 17, 5


@pytest.fixture(scope="module")
def edges():
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, N_USERS * N_ITEMS, 90))
    users, items = keys // N_ITEMS, keys % N_ITEMS
    return normalized_edges(users, items, N_USERS, N_ITEMS)


def graph_on(edges, num_devices, pad_to=None):
    users, items, weights = pad_edges(*edges, multiple=pad_to or num_devices)
    arrays = {"users": users, "items": items, "weights": weights}
    return put_graph(arrays, N_USERS, N_ITEMS, sharding.create_mesh(num_devices))


def dense_adjacency(edges):
    users, items, weights = edges
    matrix = np.zeros((N_USERS, N_ITEMS))
    matrix[users, items] = weights
    return matrix


def dense_propagate(matrix, user_emb, item_emb, layers=3):
    user_sum, item_sum, user_layer, item_layer = user_emb, item_emb, user_emb, item_emb
    for _ in range(layers):
        user_layer, item_layer = matrix @ item_layer, matrix.T @ user_layer
        user_sum, item_sum = user_sum + user_layer, item_sum + item_layer
    return user_sum / (layers + 1), item_sum / (layers + 1)


def embeddings(seed=1):
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.standard_normal((N_USERS, DIM)), jnp.float32),
        jnp.asarray(rng.standard_normal((N_ITEMS, DIM)), jnp.float32),
    )


def test_weights_are_symmetric_normalisation():
    users, items = np.array([0, 0, 1]), np.array([0, 1, 1])
    _, _, weights = normalized_edges(users, items, 2, 2)
    # d_u = (2, 1), d_i = (1, 2)
    np.testing.assert_allclose(
        weights, [1 / np.sqrt(2 * 1), 1 / np.sqrt(2 * 2), 1 / np.sqrt(1 * 2)]
    )


def test_sharded_propagation_matches_single_device_and_dense(edges):
    assert jax.device_count() == 4
    user_emb, item_emb = embeddings()
    expected = dense_propagate(dense_adjacency(edges), np.asarray(user_emb), np.asarray(item_emb))
    run = jax.jit(lambda u, i, g: propagate(g, u, i, 3))
    for devices in (1, 4):
        got = run(user_emb, item_emb, graph_on(edges, devices))
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6)


def test_sharded_propagation_gradients_match_dense(edges):
    user_emb, item_emb = embeddings()
    matrix = jnp.asarray(dense_adjacency(edges), jnp.float32)

    def loss(user_emb, item_emb, propagate_fn):
        users, items = propagate_fn(user_emb, item_emb)
        return jnp.sum(jnp.sin(users) * 1.5) + jnp.sum(items**2)

    def dense(u, i):
        return dense_propagate(matrix, u, i)

    expected = jax.grad(loss, argnums=(0, 1))(user_emb, item_emb, dense)

    def sparse_loss(user_emb, item_emb, graph):
        return loss(user_emb, item_emb, lambda u, i: propagate(graph, u, i, 3))

    grad_fn = jax.jit(jax.grad(sparse_loss, argnums=(0, 1)))
    for devices in (1, 4):
        got = grad_fn(user_emb, item_emb, graph_on(edges, devices))
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_padding_edges_change_nothing(edges):
    user_emb, item_emb = embeddings(2)
    run = jax.jit(lambda u, i, g: propagate(g, u, i, 2))
    plain = run(user_emb, item_emb, graph_on(edges, 1, pad_to=1))
    padded = run(user_emb, item_emb, graph_on(edges, 4, pad_to=64))
    for a, b in zip(plain, padded, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_weighted_product_and_transpose_match_dense(edges):
    _, item_emb = embeddings(3)
    graph = graph_on(edges, 4)
    matrix = dense_adjacency(edges)
    rng = np.random.default_rng(4)
    keep = (rng.random(graph.weights.shape) < 0.5).astype(np.float32)
    weights = graph.weights * keep  # e.g. CDAE's input corruption
    got = jax.jit(lambda g, w, x: adjacency_matmul(g, x, weights=w))(graph, weights, item_emb)
    dropped = np.zeros_like(matrix)
    n = len(edges[0])
    dropped[edges[0], edges[1]] = np.asarray(weights)[:n]
    np.testing.assert_allclose(
        np.asarray(got), dropped @ np.asarray(item_emb), rtol=1e-5, atol=1e-6
    )
    user_values = np.asarray(embeddings(5)[0])
    got_t = jax.jit(lambda g, x: adjacency_matmul(g, x, transpose=True))(graph, user_values)
    np.testing.assert_allclose(np.asarray(got_t), matrix.T @ user_values, rtol=1e-5, atol=1e-6)


# --- item-side propagation (T = AᵀA) against the layer-by-layer BCOO formula ------------------

ITEM_SIDES = ("dense", "sparse", "none")


def item_side_graph(num_devices, item_side, monkeypatch, pad_to=None):
    """A random graph with isolated users and items and padding edges; T dense, sparse or not
    built (propagation then applies T as two products with A)."""
    return item_side_test_graph(
        N_USERS, N_ITEMS, 80, num_devices, item_side, monkeypatch, pad_to=pad_to
    )


def test_item_item_edges_are_a_transpose_a(edges):
    from dprec.graph.adjacency import item_item_edges

    rows, cols, values = item_item_edges(*edges, N_ITEMS)
    product = np.zeros((N_ITEMS, N_ITEMS))
    product[rows, cols] = values
    matrix = dense_adjacency(edges)
    np.testing.assert_allclose(product, matrix.T @ matrix, rtol=1e-6, atol=1e-7)
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == rows.shape[0]


@pytest.mark.parametrize("item_side", ITEM_SIDES)
@pytest.mark.parametrize("devices", (1, 4))
def test_item_side_propagation_equals_layerwise(devices, item_side, monkeypatch):
    from dprec.graph.propagate import propagate_layerwise

    graph = item_side_graph(devices, item_side, monkeypatch, pad_to=devices * 8)
    reference = item_side_graph(devices, "none", monkeypatch, pad_to=devices * 8)
    user_emb, item_emb = embeddings(8)
    # the cotangents reach every row, as a sum of squares would not test signs
    user_weights = jnp.asarray(np.random.default_rng(9).standard_normal((N_USERS, DIM)))
    item_weights = jnp.asarray(np.random.default_rng(10).standard_normal((N_ITEMS, DIM)))

    def loss(user_emb, item_emb, graph, fn, layers):
        users, items = fn(graph, user_emb, item_emb, layers)
        return jnp.sum(jnp.sin(users) * user_weights) + jnp.sum(items**2 * item_weights)

    for layers in (1, 2, 3, 4):
        new = jax.jit(lambda u, i, g, n=layers: propagate(g, u, i, n))(user_emb, item_emb, graph)
        old = jax.jit(lambda u, i, g, n=layers: propagate_layerwise(g, u, i, n))(
            user_emb, item_emb, reference
        )
        grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=(3, 4))
        new_grads = grad(user_emb, item_emb, graph, propagate, layers)
        old_grads = grad(user_emb, item_emb, reference, propagate_layerwise, layers)
        for a, b in zip((*new, *new_grads), (*old, *old_grads), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
        # isolated users keep (their embedding)/(L+1), isolated items likewise
        np.testing.assert_allclose(
            np.asarray(new[0])[-3:], np.asarray(user_emb)[-3:] / (layers + 1), rtol=1e-6
        )
        np.testing.assert_allclose(
            np.asarray(new[1])[-2:], np.asarray(item_emb)[-2:] / (layers + 1), rtol=1e-6
        )


@pytest.mark.parametrize("item_side", ("dense", "sparse"))
def test_bfloat16_propagation_is_close(item_side, monkeypatch):
    from dprec.graph.propagate import propagate_layerwise

    graph = item_side_graph(4, item_side, monkeypatch)
    user_emb, item_emb = embeddings(11)

    def loss(user_emb, item_emb, fn):
        users, items = fn(user_emb, item_emb)
        return jnp.sum(jnp.sin(users)) + jnp.sum(items**2)

    def bf16(u, i):
        return propagate(graph, u, i, 3, dtype="bfloat16")

    def f32(u, i):
        return propagate_layerwise(graph, u, i, 3)

    got = jax.jit(bf16)(user_emb, item_emb)
    want = jax.jit(f32)(user_emb, item_emb)
    got_grads = jax.jit(jax.grad(lambda u, i: loss(u, i, bf16), argnums=(0, 1)))(user_emb, item_emb)
    want_grads = jax.jit(jax.grad(lambda u, i: loss(u, i, f32), argnums=(0, 1)))(user_emb, item_emb)
    for a, b in zip((*got, *got_grads), (*want, *want_grads), strict=True):
        assert a.dtype == jnp.float32
        # bfloat16 keeps 8 bits of mantissa: relative error ~2⁻⁸ per row read
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-2, atol=2e-2)
    assert not np.allclose(np.asarray(got[0]), np.asarray(want[0]), rtol=1e-6, atol=1e-7)


def test_bad_propagation_dtype_is_rejected():
    from dprec.config.presets import build_config
    from dprec.config.run_config import run_spec_from_config
    from dprec.errors import ConfigError

    config = build_config("dataset=modcloth,model=lightgcn,method=normal")
    config.model.propagation_dtype = "bfloat16"
    assert run_spec_from_config(config).model.propagation_dtype == "bfloat16"
    config.model.propagation_dtype = "float16"
    with pytest.raises(ConfigError, match=r"model\.propagation_dtype='float16' is not one of"):
        run_spec_from_config(config)
