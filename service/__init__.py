"""The REST service: FastAPI app factory, cache, micro-batcher and web page (reader side of `index`)."""
