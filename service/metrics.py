"""Prometheus metrics, one CollectorRegistry per app so tests can build several apps in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "outfit_http_request_duration_seconds", "HTTP request latency by route template",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.cache_lookups = Counter(
            "outfit_cache_lookups_total", "cache lookups by kind and result", ["kind", "result"], registry=r
        )
        self.cache_hit_ratio = Gauge("outfit_cache_hit_ratio", "hits / lookups since start", registry=r)
        self.redis_errors = Counter("outfit_redis_errors_total", "Redis operations that failed", ["op"], registry=r)
        self.redis_up = Gauge("outfit_redis_up", "1 while Redis answers, 0 while the local fallback is used",
                              registry=r)
        self.batch_size = Histogram(
            "outfit_embed_batch_size", "images per embedder forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_latency = Histogram(
            "outfit_embed_batch_seconds", "embedder forward time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("outfit_embed_queue_depth", "images waiting to be embedded", registry=r)
        self.rejected = Counter("outfit_embed_rejected_total", "uploads refused because the queue was full",
                                registry=r)
        self.reloads = Counter("outfit_reloads_total", "model/index reloads by outcome", ["outcome"], registry=r)
        self.ready = Gauge("outfit_ready", "1 when a model and an index are loaded", registry=r)
