"""Which inference backends produce interchangeable embeddings (torch-free: the index reader imports it).

The index manifest records the backend an index was built with; the service may only search it with
vectors from the same family (docs/PERFORMANCE.md).
"""

from __future__ import annotations

BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
# torch and the fp32 export agree to cosine >= 0.999 per item (checked at export), so they share a family;
# int8 is a different numeric model (cosine ~0.99 to fp32), and mixing it with fp32 would bias every
# query-to-item distance. The two runtimes execute the same QDQ int8 graph, so they share a family.
BACKEND_FAMILY: dict[str, str] = {
    "torch": "fp32",
    "onnx": "fp32",
    "openvino": "fp32",
    "onnx-int8": "int8",
    "openvino-int8": "int8",
}


class BackendMismatchError(ValueError):
    """An index built with one backend would be served with an incompatible one."""


def check_backend_compatible(index_backend: str, serving_backend: str) -> None:
    """Raise unless queries embedded by `serving_backend` may be searched in an index built by `index_backend`.

    Rule: both names are known and belong to the same numeric family (fp32: torch, onnx, openvino;
    int8: onnx-int8, openvino-int8). The index manifest's model_version must also equal the serving
    checkpoint's; that is checked separately.
    """
    for role, name in (("index", index_backend), ("serving", serving_backend)):
        if name not in BACKEND_FAMILY:
            raise BackendMismatchError(f"unknown {role} backend {name!r}; known backends are {BACKENDS}")
    if BACKEND_FAMILY[index_backend] != BACKEND_FAMILY[serving_backend]:
        same = sorted(b for b, f in BACKEND_FAMILY.items() if f == BACKEND_FAMILY[index_backend])
        raise BackendMismatchError(
            f"the index was built with backend {index_backend!r} ({BACKEND_FAMILY[index_backend]} embeddings) "
            f"but the service is set to {serving_backend!r} ({BACKEND_FAMILY[serving_backend]}); serve it with "
            f"one of {same} or rebuild the index with {serving_backend!r}"
        )
