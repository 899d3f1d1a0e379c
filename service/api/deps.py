"""Typed FastAPI dependencies: routes receive the state, the current engine and the cache."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.cache import MeteredCache
from service.engine import Engine
from service.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.service
    return state


def get_engine(state: Annotated[AppState, Depends(get_state)]) -> Engine:
    # Taken once per request: a concurrent reload cannot switch models halfway through.
    return state.require_engine()


def get_cache(state: Annotated[AppState, Depends(get_state)]) -> MeteredCache:
    return state.cache


StateDep = Annotated[AppState, Depends(get_state)]
EngineDep = Annotated[Engine, Depends(get_engine)]
CacheDep = Annotated[MeteredCache, Depends(get_cache)]
