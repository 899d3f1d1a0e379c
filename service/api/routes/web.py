"""The web page at `/` (static HTML + JS calling the /v1 API)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index_page() -> HTMLResponse:
    html = resources.files("service").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(html)
