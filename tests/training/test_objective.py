"""Objective: the matched-rows shortcut has the gradient of embedding the whole unlabeled batch with gradients
(batch norm in eval mode, where both are exact), each term switches off cleanly, and the matching pass never
moves batch-norm statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from embedder import EmbedderConfig, PreprocessConfig, build_embedder
from training.config import TrainConfig
from training.data import ImageStore, UnlabeledSource, to_input
from training.matching import match_with_options
from training.objective import Objective, _flat

SIZE, B, U = 32, 4, 24


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("imgs")
    paths = {}
    for k in range(3 * B + U):
        p = root / f"i{k}.png"
        Image.fromarray(rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)).save(p)
        paths[f"i{k}"] = p
    s = ImageStore(paths, PreprocessConfig(image_size=SIZE))
    s.load()
    return s


def codes() -> dict[str, int]:
    return {f"i{k}": k % 3 for k in range(3 * B + U)}


def setup(store: ImageStore, **cfg: object) -> tuple[Objective, torch.nn.Module, dict[str, torch.Tensor]]:
    config = TrainConfig(batch_size=B, unlabeled_batch=U, **cfg)  # type: ignore[arg-type]
    pool = [f"i{k}" for k in range(3 * B, 3 * B + U)]
    unl = UnlabeledSource(pool, store, views=None, seed=0, category_codes=codes())
    torch.manual_seed(0)
    net = build_embedder(EmbedderConfig(embed_dim=8, preprocess=PreprocessConfig(image_size=SIZE)))
    trip_ids = [[f"i{3 * t + r}" for r in range(3)] for t in range(B)]
    batch = {
        "triplet": torch.stack([to_input(store.batch(t), store.cfg) for t in trip_ids]),
        "categories": torch.tensor([[codes()[i] for i in t] for t in trip_ids]),
    }
    return Objective(config, unlabeled=unl), net, batch


def grads(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


@pytest.mark.parametrize("options", [
    {},
    {"category_matching": True, "acceptance": "ratio", "ratio_threshold": 0.99},
])
def test_shortcut_gradient_equals_full_unlabeled_batch_gradient(store: ImageStore, options: dict) -> None:
    objective, net, batch = setup(store, use_l=False, use_ss=False, use_pseudo=True, **options)
    net.eval()
    out = objective(net, net, batch, step=0, device=torch.device("cpu"))
    out.loss.backward()
    shortcut = grads(net)
    net.zero_grad()

    # Reference: the paper's way, every unlabeled image embedded with gradients.
    assert objective.unlabeled is not None
    u_ids = objective.unlabeled.sample(U, step=0)
    trip = _flat(batch["triplet"])
    full = net(torch.cat([trip, objective.unlabeled.images(u_ids)]), normalize=True)
    e = full.detach()
    c = objective.config
    res = match_with_options(
        e[:B], e[B : 2 * B], e[2 * B : 3 * B], e[3 * B :],
        triplet_cats=batch["categories"].T if c.category_matching else None,
        key_cats=objective.unlabeled.categories(u_ids) if c.category_matching else None,
        acceptance=c.acceptance, ratio_threshold=c.ratio_threshold,
    )
    u = full[3 * B :]
    hinge = objective.pseudo.triplet.per_triplet(u[res.indices.anchor], u[res.indices.positive],
                                                 u[res.indices.negative])
    ref_loss = (hinge * res.accepted.float()).sum() / B
    ref_loss.backward()
    assert out.loss.item() == pytest.approx(ref_loss.item(), abs=1e-6)
    assert out.stats["accept_rate"] == pytest.approx(res.accepted.float().mean().item())
    assert any(g.abs().sum() > 0 for g in shortcut) or ref_loss.item() == 0.0
    for g1, g2 in zip(shortcut, grads(net), strict=True):
        assert torch.allclose(g1, g2, atol=1e-5, rtol=1e-4)


def test_terms_switch_off_cleanly(store: ImageStore) -> None:
    objective, net, batch = setup(store, use_ss=False, use_pseudo=False)
    out = objective(net, net, batch, step=0, device=torch.device("cpu"))
    assert set(out.terms) == {"L_l"} and out.loss.item() == pytest.approx(out.terms["L_l"])
    assert out.images == 3 * B

    objective, net, batch = setup(store, use_ss=False, use_pseudo=True, lambda_pseudo=0.5)
    out = objective(net, net, batch, step=0, device=torch.device("cpu"))
    assert out.loss.item() == pytest.approx(out.terms["L_l"] + 0.5 * out.terms["L_pseudo"], abs=1e-6)

    objective, net, batch = setup(store, use_l=False, use_ss=False, use_pseudo=True, pseudo_warmup_steps=5)
    out = objective(net, net, batch, step=4, device=torch.device("cpu"))
    # In the supervised warm-up no matching pass runs and nothing is embedded beyond the triplets.
    assert out.terms["L_pseudo"] == 0.0 and "accept_rate" not in out.stats and out.images == 3 * B
    assert out.stats["w_pseudo"] == 0.0


def test_matching_pass_does_not_move_batch_norm_statistics(store: ImageStore) -> None:
    objective, net, batch = setup(store, use_l=False, use_ss=False, use_pseudo=True)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    trip = _flat(batch["triplet"])
    assert objective.unlabeled is not None
    objective._match(net, batch, trip, objective.unlabeled.sample(U, step=0), lambda x: x)
    after = {k: v for k, v in net.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_ema_teacher_matches_and_survives_a_state_round_trip(store: ImageStore) -> None:
    objective, net, batch = setup(store, use_ss=False, use_pseudo=True, ema_decay=0.9, queue_size=8)
    out = objective(net, net, batch, step=0, device=torch.device("cpu"))
    out.loss.backward()
    objective.after_step(net)
    assert objective.teacher is not None and objective.queue is not None and len(objective.queue) == 8
    state = objective.state_dict()
    fresh, net2, _ = setup(store, use_ss=False, use_pseudo=True, ema_decay=0.9, queue_size=8)
    fresh.load_state_dict(state)
    fresh.after_step(net2)  # creates the teacher from net2, then loads the saved weights before updating
    assert fresh.teacher is not None
    # 0.9 * saved + 0.1 * net2 for every parameter
    for t, s, n2 in zip(fresh.teacher.module.parameters(), objective.teacher.module.parameters(), net2.parameters(),
                        strict=True):
        assert torch.allclose(t, 0.9 * s + 0.1 * n2, atol=1e-6)
