"""Diversity (MMR within a category) and the calibrated pair score on complementary items (issue 14)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from embedder.calibration import UNCALIBRATED, Calibration
from index import open_index
from index.store import ItemRecord
from index.writer import IndexPolicy, build_content, write_version
from service.diversity import mean_pairwise_similarity, mmr_order, mmr_orders, pool_size
from service.recommend import complementary
from service.schemas import ComplementaryOptions
from service.scoring import completion_distances, score_outfit


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _naive_mmr(rel: list[float], vecs: np.ndarray, k: int, lam: float) -> list[int]:
    """The definition, one candidate at a time: argmax (1-λ)·rel - λ·max sim to the chosen (0 when none)."""
    chosen: list[int] = []
    while len(chosen) < min(k, len(rel)):
        best, best_gain = -1, -math.inf
        for i in range(len(rel)):
            if i in chosen:
                continue
            penalty = max((float(np.dot(vecs[i], vecs[j])) for j in chosen), default=0.0)
            gain = (1 - lam) * rel[i] - lam * penalty
            if gain > best_gain + 1e-12:
                best, best_gain = i, gain
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("lam", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_mmr_matches_the_naive_definition(lam: float) -> None:
    rng = np.random.default_rng(3)
    for trial in range(20):
        vecs = _unit(rng.standard_normal((15, 8)))
        rel = (vecs @ _unit(rng.standard_normal(8))).astype(np.float64)
        assert mmr_order(rel, vecs, k=6, diversity=lam) == _naive_mmr(list(rel), vecs, 6, lam), trial


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_batched_mmr_equals_each_pool_alone(lam: float) -> None:
    """One padded pass over pools of different sizes (empty, single, shorter than k) picks what the
    definition picks in each pool alone: padding is never chosen and pools do not see each other."""
    rng = np.random.default_rng(5)
    sizes = [0, 1, 3, 9, 20]
    vecs = [_unit(rng.standard_normal((n, 8))) if n else np.zeros((0, 8)) for n in sizes]
    rels = [rng.standard_normal(n) for n in sizes]
    got = mmr_orders(rels, vecs, k=5, diversity=lam)
    assert got == [_naive_mmr(list(r), v, 5, lam) for r, v in zip(rels, vecs, strict=True)]
    assert [len(o) for o in got] == [0, 1, 3, 5, 5]
    assert mmr_orders([], [], k=5, diversity=lam) == []


def test_mmr_zero_is_relevance_order_and_bad_values_fail() -> None:
    rel = np.array([0.1, 0.9, 0.5, 0.9])
    assert mmr_order(rel, np.eye(4), k=3, diversity=0.0) == [1, 3, 2]
    assert mmr_order(rel, np.eye(4), k=10, diversity=0.3) == [1, 3, 2, 0]
    assert mmr_order(np.zeros(0), np.zeros((0, 4)), k=3, diversity=0.5) == []
    with pytest.raises(ValueError, match="diversity"):
        mmr_order(rel, np.eye(4), k=2, diversity=1.5)
    assert pool_size(5, 0.0) == 5 and pool_size(5, 0.3) == 20 and pool_size(50, 0.3) == 50


def test_vectorised_calibration_and_completion_distance_match_the_outfit_score() -> None:
    cal = Calibration(slope=-4.0, intercept=3.0)
    d = np.linspace(0, 2, 41)
    assert cal.probabilities(d) == pytest.approx([cal.probability(float(x)) for x in d], abs=1e-12)
    assert Calibration(slope=-900.0, intercept=0.0).probabilities(np.array([2.0]))[0] == pytest.approx(0.0)
    rng = np.random.default_rng(1)
    for m in (1, 2, 4):
        outfit, cand = _unit(rng.standard_normal((m, 16))), _unit(rng.standard_normal((5, 16)))
        want = [score_outfit(np.concatenate([outfit, c[None]]), cal).mean_distance for c in cand]
        assert completion_distances(outfit, cand) == pytest.approx(want, abs=1e-6)


@pytest.fixture(scope="module")
def near_duplicates(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Shoes in 4 looks, 5 near-copies each (the 'two coral sunglasses' case); one query top."""
    rng = np.random.default_rng(0)
    looks = _unit(rng.standard_normal((4, 16)))
    query = _unit(looks.mean(axis=0) + 0.05 * rng.standard_normal(16))
    shoes = _unit(np.repeat(looks, 5, axis=0) + 0.02 * rng.standard_normal((20, 16)))
    vectors = np.concatenate([query[None], shoes])
    records = [ItemRecord("q", "tops", "", None, None, "")] + [
        ItemRecord(f"shoe{n:02d}", "shoes", f"look {n // 5}", None, None, "") for n in range(20)]
    root = tmp_path_factory.mktemp("dup") / "index"
    policy = IndexPolicy()
    write_version(root, build_content(records, vectors, policy), policy=policy, operation="build",
                  identity={"model_version": "m" * 16, "checkpoint_sha256": "ab" * 32, "backend": "torch"})
    idx = open_index(root)
    return SimpleNamespace(index=idx, calibration=UNCALIBRATED, model_version="m", index_version="v"), query


def _shoes(engine: Any, query: np.ndarray, diversity: float) -> list[Any]:
    opts = ComplementaryOptions(per_category=4, k=4, diversity=diversity)
    groups = complementary(engine, query, query_categories=["tops"], query_ids=["q"], options=opts)
    return groups[0].items


def test_diversity_replaces_near_duplicates_with_other_looks(near_duplicates: Any) -> None:
    engine, query = near_duplicates
    plain, varied = _shoes(engine, query, 0.0), _shoes(engine, query, 0.5)
    looks = lambda items: {it.title for it in items}  # noqa: E731
    assert len(looks(plain)) < 4 and len(looks(varied)) == 4
    assert plain[0].id == varied[0].id  # the best match stays first
    sims = [mean_pairwise_similarity(engine.index.vectors([it.id for it in items])) for items in (plain, varied)]
    assert sims[1] < sims[0]
    assert [it.score for it in plain] == sorted((it.score for it in plain), reverse=True)


def test_api_diversity_validation_and_pair_score_equals_compatibility(client: Any) -> None:
    engine = client.app.state.service.engine
    cats = sorted(engine.index.categories())
    first = engine.index.search(engine.index.vectors_of_rows([0]), k=1, category=cats[0])[0][0].item_id
    for bad in (-0.1, 1.5, "much"):
        r = client.post("/v1/complementary", json={"item_ids": [first], "diversity": bad})
        assert r.status_code == 422 and "diversity" in r.text
    for query in ([first], [first, engine.index.search(engine.index.vectors([first]), k=1, category=cats[1])[0][0]
                           .item_id]):
        for diversity in (0.0, 0.7):
            body = client.post("/v1/complementary", json={"item_ids": query, "k": 6, "per_category": 2,
                                                          "diversity": diversity}).json()
            for item in [it for g in body["groups"] for it in g["items"]][:3]:
                pair = client.post("/v1/compatibility", json={"item_ids": [*query, item["id"]]}).json()
                assert item["compatibility"] == pytest.approx(pair["score"], abs=2e-6)


def test_multipart_diversity_field(client: Any, tmp_path: Path) -> None:
    import image_corpus

    files = {"image": ("a.jpg", image_corpus.jpeg_bytes((64, 80)), "image/jpeg")}
    r = client.post("/v1/complementary", files=files, data={"diversity": "0.4", "k": "4"})
    assert r.status_code == 200, r.text
    assert all(0 <= it["compatibility"] <= 1 for g in r.json()["groups"] for it in g["items"])
    assert client.post("/v1/complementary", files=files, data={"diversity": "2"}).status_code == 422
