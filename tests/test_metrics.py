"""Recall@K and NDCG@K against hand-computed values."""

import math

import numpy as np
import pytest

from dprec import metrics


def test_recall_ndcg_hand_computed_small():
    # User 0: |T| = 2, hits at ranks 1 and 3.  User 1: |T| = 1, hit at rank 2.
    hits = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], bool)
    n_rel = np.array([2, 1])
    recall, ndcg = metrics.recall_ndcg_per_user(hits, n_rel, k=3)
    np.testing.assert_allclose(recall, [1.0, 1.0])
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3)
    np.testing.assert_allclose(ndcg, [dcg0 / idcg0, (1 / math.log2(3)) / 1.0])


def test_more_relevant_items_than_k():
    # |T| = 5 > K = 2: recall divides by |T|, the ideal DCG stops at K.
    hits = np.array([[1, 1, 0, 0]], bool)
    recall, ndcg = metrics.recall_ndcg_per_user(hits, np.array([5]), k=2)
    assert recall[0] == pytest.approx(2 / 5)
    assert ndcg[0] == pytest.approx(1.0)
    recall, ndcg = metrics.recall_ndcg_per_user(np.array([[0, 1, 0, 0]], bool), np.array([5]), 2)
    assert recall[0] == pytest.approx(1 / 5)
    assert ndcg[0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_summarize_means_over_users_and_subsets():
    hits = np.array([[1, 0], [0, 0], [0, 1]], bool)
    n_rel = np.array([1, 2, 1])
    result = metrics.summarize(hits, n_rel, (1, 2))
    assert result["users"] == 3
    assert result["recall@1"] == pytest.approx(1 / 3)
    assert result["recall@2"] == pytest.approx((1 + 0 + 1) / 3)
    assert result["ndcg@2"] == pytest.approx((1 + 0 + 1 / math.log2(3)) / 3)
    subset = metrics.summarize(hits, n_rel, (1,), np.array([False, True, True]))
    assert subset["users"] == 2 and subset["recall@1"] == 0.0
    empty = metrics.summarize(hits, n_rel, (1,), np.zeros(3, bool))
    assert empty["users"] == 0 and empty["recall@1"] is None
