"""Typed FastAPI dependencies: routes receive the state, the current engine and the cache.

They are `async def` although they never await: FastAPI runs a plain `def` dependency in its threadpool, and
three thread hand-offs per request cost more CPU than an id answer's MMR (issue 16's profile of the event loop).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.cache import MeteredCache
from service.engine import Engine
from service.state import AppState


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.service
    return state


async def get_engine(state: Annotated[AppState, Depends(get_state)]) -> Engine:
    # Taken once per request: a concurrent reload cannot switch models halfway through.
    return state.require_engine()


async def get_cache(state: Annotated[AppState, Depends(get_state)]) -> MeteredCache:
    return state.cache


StateDep = Annotated[AppState, Depends(get_state)]
EngineDep = Annotated[Engine, Depends(get_engine)]
CacheDep = Annotated[MeteredCache, Depends(get_cache)]
