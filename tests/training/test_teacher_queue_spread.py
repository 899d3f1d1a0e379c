"""EMA teacher, batch-norm guard, matching queue and the embedding-spread measures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from training.queue import EmbeddingQueue
from training.spread import effective_rank, embedding_spread, mean_pairwise_cosine
from training.teacher import EmaTeacher, frozen_bn_stats


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))


def test_ema_teacher_follows_the_student_by_its_decay() -> None:
    student = small_net()
    teacher = EmaTeacher(student, decay=0.9)
    before = [p.detach().clone() for p in teacher.module.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    student.train()(torch.randn(8, 4))  # moves the student's BN statistics
    teacher.update(student)
    for t, b, s in zip(teacher.module.parameters(), before, student.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * s)
        assert not t.requires_grad
    for tb, sb in zip(teacher.module.buffers(), student.buffers(), strict=True):
        assert torch.equal(tb, sb)
    assert not teacher.module.training


def test_ema_decay_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        EmaTeacher(small_net(), decay=1.0)


def test_frozen_bn_stats_leaves_running_statistics_alone() -> None:
    net = small_net().train()
    bn = net[1]
    mean, var, count = bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()
    with torch.no_grad(), frozen_bn_stats(net):
        net(torch.randn(16, 4) * 5 + 3)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert torch.equal(bn.num_batches_tracked, count)
    net(torch.randn(16, 4) * 5 + 3)  # outside the guard the statistics move, so the check above can fail
    assert not torch.equal(bn.running_mean, mean)


def test_queue_is_fifo_bounded_and_keeps_the_newest_copy_of_an_id() -> None:
    q = EmbeddingQueue(4)
    q.push(["a", "b"], torch.tensor([[1.0], [2.0]]), torch.tensor([0, 1]))
    q.push(["c", "a"], torch.tensor([[3.0], [4.0]]), torch.tensor([2, 0]))
    assert q.ids == ["c", "a", "b"]
    assert q.emb is not None and q.emb[:, 0].tolist() == [3.0, 4.0, 2.0]
    q.push(["d", "e"], torch.tensor([[5.0], [6.0]]), torch.tensor([3, 3]))
    assert q.ids == ["d", "e", "c", "a"] and len(q) == 4
    assert q.categories is not None and q.categories.tolist() == [3, 3, 2, 0]


def test_spread_of_a_collapsed_and_of_a_spread_out_space() -> None:
    rng = np.random.default_rng(0)
    collapsed = np.ones((50, 8)) + 1e-4 * rng.normal(size=(50, 8))
    s = embedding_spread(collapsed)
    assert s["collapsed"] is True and s["mean_cosine"] > 0.99 and s["effective_rank"] < 1.5
    spread = rng.normal(size=(2000, 8))
    t = embedding_spread(spread)
    assert t["collapsed"] is False and abs(t["mean_cosine"]) < 0.02 and t["effective_rank"] > 7.5


def test_mean_pairwise_cosine_equals_the_naive_mean() -> None:
    x = np.random.default_rng(1).normal(size=(30, 5))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = xn @ xn.T
    naive = (c.sum() - np.trace(c)) / (30 * 29)
    assert mean_pairwise_cosine(x) == pytest.approx(naive)
    assert effective_rank(np.eye(6)) == pytest.approx(6.0, rel=1e-4)
    with pytest.raises(ValueError):
        mean_pairwise_cosine(x[:1])
