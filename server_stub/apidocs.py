"""/docs, /redoc and /openapi.json: behind the same access rule as the other pages (open,
or admin-only under --require-login), with Swagger UI and ReDoc served from this host.

The assets come from the fastapi-offline package (it ships the swagger-ui and redoc dists);
the pages are our own, so that no inline script is needed and the CSP stays strict.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from server_stub.accounts import access
from server_stub.errors import NotFound, Unavailable

router = APIRouter(include_in_schema=False)

ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
          "redoc.standalone.js": "text/javascript"}
# Swagger UI and ReDoc style their elements inline and ReDoc draws icons from data: URLs;
# scripts still come only from this origin.
DOCS_CSP = ("default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:")

SWAGGER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Ardoise collector API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/apidocs.js"></script></body></html>
"""

REDOC = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Ardoise collector API</title></head>
<body><redoc spec-url="/openapi.json" disable-search="false"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script></body></html>
"""


def _assets_dir() -> Path:
    try:
        import fastapi_offline
    except ImportError:
        raise Unavailable("the API docs assets (package fastapi-offline) are not installed") from None
    return Path(fastapi_offline.__file__).parent / "static"


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/openapi.json")
def openapi(request: Request) -> JSONResponse:
    access.reader(request)
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def swagger(request: Request) -> HTMLResponse:
    access.reader(request)
    _assets_dir()
    return _page(SWAGGER)


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    access.reader(request)
    _assets_dir()
    return _page(REDOC)


@router.get("/docs/assets/{name}")
def asset(request: Request, name: str) -> FileResponse:
    access.reader(request)
    if name not in ASSETS:
        raise NotFound(f"no docs asset {name}")
    return FileResponse(_assets_dir() / name, media_type=ASSETS[name])
