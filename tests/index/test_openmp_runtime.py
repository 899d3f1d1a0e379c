"""The test process runs one OpenMP runtime: FAISS and torch share torch's libgomp (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def thread_counts() -> Iterator[None]:
    import faiss
    import torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.mark.usefixtures("thread_counts")
def test_faiss_and_torch_share_one_openmp_runtime() -> None:
    import faiss
    import torch

    # torch.set_num_threads sets OpenMP's thread count; FAISS sees it only when both call the same libgomp.
    # With faiss loaded first (its own bundled libgomp) FAISS would keep its own count here.
    for n in (3, 1, 2):
        torch.set_num_threads(n)
        assert faiss.omp_get_max_threads() == n
