"""Complete the look (issue 14): co-occurrence targets, beam search, POST /v1/outfits/complete."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import image_corpus
import numpy as np
import pytest

from embedder.calibration import UNCALIBRATED
from index.cooccurrence import count_cooccurrence
from service.completion import beam_search, default_targets, pick_outfits
from service.scoring import score_outfit


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_cooccurrence_counts_each_outfit_once() -> None:
    outfits = [["tops", "bottoms", "shoes", "shoes"], ["all-body", "shoes"], ["tops", "bottoms"], ["hats"]]
    got = count_cooccurrence(outfits)
    assert got["outfits"] == 4
    assert got["per_category"] == dict(Counter(c for o in outfits for c in set(o)))
    naive = Counter((a, b) for o in outfits for a in set(o) for b in set(o) if a != b)
    assert {(a, b): n for a, row in got["pairs"].items() for b, n in row.items()} == dict(naive)


def test_default_targets_follow_what_stylists_combine() -> None:
    outfits = ([["tops", "bottoms", "shoes", "bags"]] * 6 + [["all-body", "shoes", "bags"]] * 4
               + [["tops", "bottoms", "hats"]])
    cooc = count_cooccurrence(outfits)
    known = ["all-body", "bags", "bottoms", "hats", "shoes", "tops"]
    assert default_targets(cooc, ["tops"], known) == (["bottoms", "bags", "shoes"], "co-occurrence")  # ties: by name
    # all-body never comes with bottoms: after shoes and bags, nothing else qualifies
    assert default_targets(cooc, ["all-body"], known) == (["bags", "shoes"], "co-occurrence")
    assert default_targets(cooc, ["tops"], known, min_share=0.95) == (["bottoms"], "co-occurrence")
    assert default_targets(None, ["tops"], known) == ([c for c in known if c != "tops"], "all-other-categories")
    # a seed category no training outfit holds: no evidence, every other category
    assert default_targets(cooc, ["scarves"], [*known, "scarves"])[1] == "all-other-categories"


def test_beam_search_equals_exhaustive_search_when_wide_enough() -> None:
    rng = np.random.default_rng(0)
    for trial in range(5):
        seeds = _unit(rng.standard_normal((1 + trial % 2, 8)))
        pools = [_unit(rng.standard_normal((n, 8))) for n in (4, 3, 5)]
        exhaustive = sorted(
            (score_outfit(np.vstack([seeds, *[p[j] for p, j in zip(pools, combo, strict=True)]]),
                          UNCALIBRATED).mean_distance, combo)
            for combo in itertools.product(*[range(len(p)) for p in pools])
        )
        beams, evaluated = beam_search(seeds, pools, beam_width=60)
        assert [b.picks for b in beams] == [c for _, c in exhaustive]
        assert [b.mean_distance for b in beams] == pytest.approx([d for d, _ in exhaustive], abs=1e-9)
        assert evaluated == 4 + 4 * 3 + 12 * 5
        narrow, n_eval = beam_search(seeds, pools, beam_width=2)
        assert len(narrow) == 2 and len({b.picks for b in narrow}) == 2 and n_eval == 4 + 2 * 3 + 2 * 5
        assert narrow[0].mean_distance >= exhaustive[0][0] - 1e-12
    with pytest.raises(ValueError):
        beam_search(seeds, [pools[0], np.zeros((0, 8))], beam_width=3)


def test_pick_outfits_varies_with_diversity() -> None:
    from service.completion import Beam

    beams = [Beam((0, 0, 0), 0.1), Beam((0, 0, 1), 0.11), Beam((0, 1, 0), 0.12), Beam((1, 1, 1), 0.2)]
    scores = [0.9, 0.89, 0.88, 0.8]
    assert pick_outfits(beams, scores, n=2, diversity=0.0) == [0, 1]
    assert pick_outfits(beams, scores, n=2, diversity=0.5) == [0, 3]
    assert pick_outfits([], [], n=2, diversity=0.5) == []


def _first_of(client: Any, category: str) -> str:
    idx = client.app.state.service.engine.index
    return str(idx.search(np.ones((1, idx.dim), dtype=np.float32), k=1, category=category)[0][0].item_id)


def test_complete_by_ids_whole_outfits(client: Any) -> None:
    seed = _first_of(client, "tops")
    r = client.post("/v1/outfits/complete", json={"item_ids": [seed], "n_outfits": 4, "diversity": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["targets_source"] == "co-occurrence" and body["targets"] and "tops" not in body["targets"]
    assert body["seeds"] == [{"ref": seed, "kind": "item", "category": "tops", "category_source": "catalog",
                              "category_confidence": None}]
    outfits = body["outfits"]
    assert [o["rank"] for o in outfits] == [1, 2, 3, 4]
    assert [o["score"] for o in outfits] == sorted((o["score"] for o in outfits), reverse=True)
    combos = {tuple(e["ref"] for e in o["items"]) for o in outfits}
    assert len(combos) == 4  # every outfit differs in at least one item
    n_items = 1 + len(body["targets"])
    assert body["search"]["evaluated"] <= body["search"]["beam_width"] * body["search"]["candidates_per_category"] * (
        len(body["targets"]))
    for o in outfits[:2]:
        refs = [e["ref"] for e in o["items"]]
        assert refs[0] == seed and [e["category"] for e in o["items"][1:]] == body["targets"]
        assert len(refs) == n_items and len(set(refs)) == n_items
        compat = client.post("/v1/compatibility", json={"item_ids": refs}).json()
        assert o["score"] == pytest.approx(compat["score"], abs=1e-6)
        assert np.allclose(o["pairwise"], compat["pairwise"], atol=1e-5)
        for n, e in enumerate(o["items"]):
            without = client.post("/v1/compatibility", json={"item_ids": refs[:n] + refs[n + 1:]}).json()
            assert e["contribution"] == pytest.approx(o["score"] - without["score"], abs=2e-6)
            if e["role"] == "added":
                pair = client.post("/v1/compatibility", json={"item_ids": [seed, e["ref"]]}).json()
                assert e["compatibility"] == pytest.approx(pair["score"], abs=2e-6)
                assert e["item"]["id"] == e["ref"] and e["item"]["image_url"]


def test_complete_targets_exclusions_and_diversity(client: Any) -> None:
    seeds = [_first_of(client, "tops"), _first_of(client, "bottoms")]
    body = client.post("/v1/outfits/complete", json={"item_ids": seeds, "categories": ["shoes", "bags", "tops"],
                                                      "n_outfits": 3, "diversity": 0}).json()
    assert body["targets"] == ["shoes", "bags"] and body["targets_source"] == "request"
    best = body["outfits"][0]
    taken = [e["ref"] for e in best["items"] if e["role"] == "added"]
    again = client.post("/v1/outfits/complete", json={"item_ids": seeds, "categories": ["shoes", "bags"],
                                                       "exclude": taken}).json()
    assert not {e["ref"] for o in again["outfits"] for e in o["items"]} & set(taken)
    varied = client.post("/v1/outfits/complete", json={"item_ids": seeds, "categories": ["shoes", "bags"],
                                                        "n_outfits": 3, "diversity": 0.8}).json()

    def shared(outfits: list[dict[str, Any]]) -> int:
        sets = [{e["ref"] for e in o["items"] if e["role"] == "added"} for o in outfits]
        return sum(len(a & b) for a, b in itertools.combinations(sets, 2))

    assert shared(varied["outfits"]) <= shared(body["outfits"])


def test_complete_with_a_photo_seed(client: Any) -> None:
    photo = image_corpus.jpeg_bytes((90, 120))
    files = [("images", ("p.jpg", photo, "image/jpeg"))]
    r = client.post("/v1/outfits/complete", files=files, data={"n_outfits": "2"})
    assert r.status_code == 200, r.text
    seed = r.json()["seeds"][0]
    assert seed["ref"] == "upload:0" and seed["category_source"] in ("head", "neighbours")
    assert 0 < seed["category_confidence"] <= 1
    assert r.json()["outfits"][0]["items"][0]["item"] is None
    item = _first_of(client, "shoes")
    r = client.post("/v1/outfits/complete", files=files,
                    data={"item_ids": item, "image_categories": "tops", "categories": "bags,hats"})
    body = r.json()
    assert [s["ref"] for s in body["seeds"]] == [item, "upload:0"] and body["seeds"][1]["category_source"] == "given"
    assert body["targets"] == ["bags", "hats"] and len(body["outfits"][0]["items"]) == 4


@pytest.mark.parametrize(("payload", "status", "word"), [
    ({"item_ids": ["no-such-item"]}, 404, "no-such-item"),
    ({"item_ids": []}, 422, "item_ids"),
    ({"item_ids": ["X"], "n_outfits": 0}, 422, "n_outfits"),
    ({"item_ids": ["X"], "n_outfits": 11}, 422, "n_outfits"),
    ({"item_ids": ["X"], "diversity": 2}, 422, "diversity"),
    ({"item_ids": ["X"], "categories": ["capes"]}, 422, "capes"),
    ({"item_ids": ["X"], "categories": ["tops"]}, 422, "no target category"),
    ({"item_ids": ["X"], "seeds": ["X"]}, 422, "seeds"),
])
def test_complete_bad_input(client: Any, payload: dict[str, Any], status: int, word: str) -> None:
    seed = _first_of(client, "tops")
    body = {k: [seed if i == "X" else i for i in v] if isinstance(v, list) else v for k, v in payload.items()}
    r = client.post("/v1/outfits/complete", json=body)
    assert r.status_code == status and word in r.text, r.text


def test_complete_bad_multipart(client: Any) -> None:
    photo = image_corpus.jpeg_bytes((90, 120))
    assert client.post("/v1/outfits/complete", data={"n_outfits": "2"},
                       files=[("other", ("x", b"", "text/plain"))]).status_code == 422
    r = client.post("/v1/outfits/complete", files=[("images", ("p.jpg", photo, "image/jpeg"))],
                    data={"image_categories": "tops,shoes"})
    assert r.status_code == 422 and "image_categories" in r.text
    r = client.post("/v1/outfits/complete", files=[("images", ("p.jpg", b"not an image", "image/jpeg"))])
    assert r.status_code in (415, 422) and "images[0]" in r.text
    shoes = client.app.state.service.engine.index.categories()["shoes"]
    all_shoes = [h.item_id for h in client.app.state.service.engine.index.search(
        np.ones((1, client.app.state.service.engine.index.dim), dtype=np.float32), k=shoes, category="shoes")[0]]
    r = client.post("/v1/outfits/complete", json={"item_ids": [_first_of(client, "tops")], "categories": ["shoes"],
                                                   "exclude": all_shoes})
    assert r.status_code == 422 and "no items left" in r.text
