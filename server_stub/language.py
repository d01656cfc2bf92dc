"""Each reader of the collector gets pages in their language.

The language is, in order: the signed-in person's choice (not stored yet: ``chosen``),
else the browser's ``Accept-Language``, else English. Documents of a lot (CSV, PDF) are in
the lot's language when it has one (lots carry none yet: ``lot_language``), else the
reader's. The templates use Jinja2's i18n extension (``{% trans %}``, ``_()``); its
callables read the language of the request being rendered from agent.i18n's context
variable, set only around one render (``rendering``), so concurrent requests in other
threads never see it.
"""

from __future__ import annotations

from starlette.requests import Request

from agent import i18n
from agent.i18n import DEFAULT_TIMEZONE, Language, negotiate, parse_accept_language


def for_request(request: Request, chosen: str | None = None) -> Language:
    """The reader's language: their own choice when they made one, else their browser's."""
    candidates = [chosen] if chosen else []
    candidates += parse_accept_language(request.headers.get("accept-language"))
    return Language.get(negotiate(candidates), _timezone(request))


def _timezone(request: Request) -> str:
    ctx = getattr(request.app.state, "ctx", None)
    return getattr(getattr(ctx, "settings", None), "timezone", None) or DEFAULT_TIMEZONE


def lot_language(lot: str) -> str | None:
    """The language a lot's documents are written in. Lots have no language yet; when they
    get one (set at enrollment), return it here and every lot document follows it."""
    return None


def for_lot(request: Request, lot: str) -> Language:
    own = lot_language(lot)
    return Language.get(own, _timezone(request)) if own else for_request(request)


def current() -> Language:
    return i18n.current()


# Pages and PDFs are rendered inside ``rendering(lang)``: agent.i18n.speaking, so the
# agent's own renderers (certificate PDFs) speak the reader's language too.
rendering = i18n.speaking


def _explain(reason: str, code: str | None) -> str:
    from agent.certify.reasons import explain

    return explain(code, reason, current())


def install(env) -> None:
    """Jinja2's i18n extension, with callables that follow the request being rendered, and
    filters for the reader's dates, sizes and NIST terms."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(
        lambda s: current().gettext(s),
        lambda s, p, n: current().ngettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: current().pgettext(c, s),
    )
    env.filters["when"] = lambda t: current().when(t)
    # A page must not break "67,1 Mo" across two lines: the space is a no-break space.
    env.filters["bytes"] = lambda n: current().size(n).replace(" ", "\u00a0")
    env.filters["category"] = lambda c, empty="—": current().nist_category(c, empty=empty)
    env.filters["outcome"] = lambda o: current().outcome(o)
    env.filters["phase"] = lambda p: current().phase(p)
    # The record's codes a reader meets: media type and method (agent/i18n.py).
    env.filters["media"] = lambda m, empty="?": current().media(m, empty=empty)
    env.filters["method"] = lambda m, empty="—": current().method(m, empty=empty)
    env.filters["explain"] = _explain
    env.filters["decimal"] = lambda x: current().decimal(x)
    env.globals["lang"] = lambda: current().code
