"""The collector application: FastAPI with the JSON API, the pages and the static files."""

from __future__ import annotations

import asyncio
import gc
import html
import json
import os
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from agent import __version__
from agent.certify.keys import StationKey
from agent.errors import ConfigError
from server_stub import api, apidocs, certpdfs, keys, language, pages, receipts
from server_stub.auth import REALM, LoginRequired, password_problem
from server_stub.db import POOL_SIZE, Database, migrate
from server_stub.errors import Rejected
from server_stub.headers import SecurityHeaders
from server_stub.labels import routes as label_routes
from server_stub.lots import routes as lot_routes
from server_stub.httpio import rejection
from server_stub.lockout import LoginGuard
from server_stub.progress import ProgressBoard, TokenBucket
from server_stub.settings import Settings

HERE = Path(__file__).parent
SETTINGS_ENV = "ARDOISE_COLLECTOR_SETTINGS"  # JSON of Settings, for uvicorn worker processes


@dataclass
class Context:
    settings: Settings
    db: Database
    progress: ProgressBoard
    templates: Jinja2Templates
    schema_version: int
    login_guard: LoginGuard
    receipt_key: StationKey  # signs upload receipts (server_stub/receipts.py)
    verify_limit: TokenBucket  # the anonymous verify, per client address
    pdfs: certpdfs.Renderer | None = None  # renders stored certificates' PDFs in the background
    # Uploads checking and inserting at once, at most as many as the database pool holds
    # connections: beyond, SQLAlchemy opens an overflow connection per upload and closes
    # it after (on PostgreSQL a new backend process each time: 9 % of a worker's time under
    # 32 clients, py-spy), while a few commits in flight already share each WAL flush.
    upload_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(POOL_SIZE))


def create_app(settings: Settings, *, run_migrations: bool = True) -> FastAPI:
    problem = password_problem(settings.admin_password) if settings.admin_password else None
    if problem:
        raise ConfigError(problem)
    if not settings.secret_key:
        settings.secret_key = secrets.token_urlsafe(32)
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    version = migrate(db) if run_migrations else _current_version()
    @asynccontextmanager
    async def lifespan(_app):
        db.start_checkpoints()
        app.state.ctx.pdfs.start()
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's full passes, which otherwise show up as latency spikes under load.
        gc.freeze()
        yield
        app.state.ctx.pdfs.stop()
        db.dispose()

    # The docs routes are ours (server_stub.apidocs): behind the login rule, assets local.
    app = FastAPI(lifespan=lifespan, title="Ardoise collector", version=__version__,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  description="Receives, verifies, stores and shows Ardoise erasure certificates. "
                              "See docs/collector-api.md.")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    pages.install_filters(templates)
    app.state.ctx = Context(settings, db, ProgressBoard(db, rate=settings.progress_rate, burst=settings.progress_burst,
                                                        timeout_s=settings.progress_timeout_s),
                            templates, version, LoginGuard(lockout_s=settings.admin_lockout_s),
                            receipts.load_or_create(receipts.key_path(settings)),
                            TokenBucket(settings.verify_rate, settings.verify_burst),
                            certpdfs.Renderer(db, settings.timezone))
    app.include_router(api.router)
    app.include_router(apidocs.router)
    app.include_router(pages.router)
    app.include_router(label_routes.router)
    app.include_router(lot_routes.router)
    app.add_middleware(SecurityHeaders)
    app.include_router(keys.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(Rejected)
    async def rejected(request: Request, exc: Rejected):
        if request.url.path.startswith("/api/") or request.url.path == "/healthz":
            resp = rejection(exc)
        elif isinstance(exc, LoginRequired) and (to_login := pages.login_redirect(request)) is not None:
            return to_login
        else:
            resp = pages.error_page(request, exc)
            if hasattr(exc, "retry_after"):  # a locked-out admin's browser is told when to come back
                resp.headers["Retry-After"] = str(int(exc.retry_after + 0.999))
        if isinstance(exc, LoginRequired) and settings.admin_enabled:
            resp.headers["WWW-Authenticate"] = REALM
        return resp

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # Bad query parameters (limit=abc) are the client's error: 400, one line.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        reason = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"status": "rejected", "id": None, "reason": reason}, status_code=400)
        message = language.for_request(request).gettext("Bad request: {reason}").format(reason=reason)
        return HTMLResponse(f"<p>{html.escape(message)}</p>", status_code=400)

    _add_security_schemes(app)
    return app


def _current_version() -> int:
    from server_stub.models import SCHEMA_VERSION
    return SCHEMA_VERSION


def _add_security_schemes(app: FastAPI) -> None:
    original = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "stationBearer": {"type": "http", "scheme": "bearer", "description": "bearer from POST /api/v1/stations"},
            "adminBasic": {"type": "http", "scheme": "basic",
                           "description": "the bootstrap admin: user admin, ARDOISE_ADMIN_PASSWORD; sees and manages everything"},
            "session": {"type": "apiKey", "in": "cookie", "name": "ardoise_login",
                        "description": "a person's login session (POST /login): sees what their organisations' roles "
                                       "allow (docs/collector.md, Roles)"},
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings travel in one environment variable."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    migrated = raw.pop("_migrated", False)
    return create_app(Settings(**raw), run_migrations=not migrated)
