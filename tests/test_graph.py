"""The normalised adjacency and its sharded sparse products (4 simulated CPU devices)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
