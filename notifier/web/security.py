"""What every page answer carries and every form post must show: security headers, CSRF tokens, the Origin check.

Forms carry a token signed with the secret key for the path they post to (and, on the operator pages, for the
operator's session), valid for a day. A post must also come from this site: browsers that send `Sec-Fetch-Site`
must say `same-origin`, and an `Origin` header must name this site. Our own pages send `Origin: null` on their
posts, because `Referrer-Policy: no-referrer` (tokens live in URLs) tells the browser to hide the origin; `null`
alone is therefore accepted, and left to the signed token. The RFC 8058 one-click unsubscribe POST, made by mail
clients with no form and no origin, is the one exception.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from itsdangerous import BadSignature, TimestampSigner
from markupsafe import Markup, escape

from notifier.web.keys import SETTINGS

log = logging.getLogger("notifier.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSRF_FIELD = "csrf"
CSRF_MAX_AGE = 24 * 3600
ADMIN_COOKIE = "notifier_admin"

# No inline script or style anywhere, nothing from elsewhere; forms post only here; nobody frames us.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; frame-src 'self'"
)
# An email's HTML, shown framed by the outbox page: its own inline styles, nothing that runs or loads.
EMAIL_PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
)


class CsrfError(Exception):
    """A form post without a valid token, or from another site."""


def _signer(secret: str, path: str, session: str) -> TimestampSigner:
    # the path and session go into the salt, so a token is good for one form's target and one operator only
    return TimestampSigner(secret, salt=f"notifier.csrf\n{path}\n{session}")


def make_csrf(secret: str, path: str, session: str = "") -> str:
    return _signer(secret, path, session).sign(secrets.token_urlsafe(8)).decode()


def check_csrf(secret: str, path: str, token: str, session: str = "") -> None:
    if not token or len(token) > 200:
        raise CsrfError("the form has no security token")
    try:
        _signer(secret, path, session).unsign(token, max_age=CSRF_MAX_AGE)
    except BadSignature as e:
        raise CsrfError("the form's security token is not valid or has expired") from e


def admin_session(request: web.Request) -> str:
    """The operator's session cookie as sent (its validity is checked by the admin pages)."""
    return request.cookies.get(ADMIN_COOKIE, "") if request.path.startswith("/admin") else ""


def _own_origins(request: web.Request) -> set[str]:
    base = urlsplit(request.app[SETTINGS].base_url)
    return {f"{base.scheme}://{base.netloc}", f"{request.scheme}://{request.host}"}


def check_origin(request: web.Request) -> None:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise CsrfError(f"the form was sent from another site ({site})")
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null" and origin not in _own_origins(request):
        raise CsrfError("the form was sent from another site")


def _one_click(request: web.Request, form: Any) -> bool:
    return request.path.startswith("/unsubscribe/") and form.get("List-Unsubscribe") == "One-Click"


def _guarded(request: web.Request) -> bool:
    # The API authenticates each request with a bearer key and is not a browser form target; the WebSub hub takes
    # posts from other servers by design (W3C WebSub 5.1), and confirms each one with its callback before acting.
    return request.method == "POST" and not request.path.startswith(("/api/", "/feeds/")) and request.path != "/websub"


@web.middleware
async def protect(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse forged form posts; give every answer the security headers."""
    if _guarded(request):
        form = await request.post()  # aiohttp keeps the parsed form: the handler reads the same one
        if not _one_click(request, form):
            try:
                check_origin(request)
                secret = request.app[SETTINGS].ensure_secret_key()
                check_csrf(secret, request.path, str(form.get(CSRF_FIELD, "")), admin_session(request))
            except CsrfError as e:
                return _refused(request, str(e))
    try:
        response = await handler(request)
    except web.HTTPException as e:
        if e.status == 404 and _is_page(request) and e.text == "404: Not Found":
            response = _page(request, "Page not found", "If you typed the web address, check it is correct.", 404)
        else:
            _headers(e.headers, request)
            raise
    except Exception:
        if not _is_page(request):
            raise  # the API answers problem+json from the outer middleware
        log.exception("unhandled error answering %s %s", request.method, request.path)
        response = _page(request, "Sorry, there is a problem with the service", "Try again later.", 500)
    _headers(response.headers, request)
    return response


def _is_page(request: web.Request) -> bool:
    # the API, feeds and the WebSub hub answer problems from the outer middleware, not pages
    return not request.path.startswith(("/api/", "/feeds/", "/websub")) and "json" not in request.headers.get(
        "Accept", "")


def _page(request: web.Request, heading: str, paragraph: str, status: int) -> web.Response:
    context = {"heading": heading, "paragraphs": [paragraph]}
    return render("message.html", request, context, status=status)


def _headers(headers: Any, request: web.Request) -> None:
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    headers.setdefault("X-Frame-Options", "DENY" if "frame-ancestors 'none'" in headers["Content-Security-Policy"]
                       else "SAMEORIGIN")
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"


def _refused(request: web.Request, reason: str) -> web.Response:
    context = {
        "heading": "This form could not be sent",
        "paragraphs": [f"For your safety we did not act on it: {reason}.", "Go back, reload the page and try again."],
    }
    return render("message.html", request, context, status=403)


def render(template: str, request: web.Request, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """Render a page template with `{{ csrf_field('/path') }}`, which writes the hidden token field for a form
    posting to that path."""
    secret = request.app[SETTINGS].ensure_secret_key()
    session = admin_session(request)

    def csrf_field(path: str) -> Markup:
        token = make_csrf(secret, path, session)
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))

    return aiohttp_jinja2.render_template(template, request, {**context, "csrf_field": csrf_field}, status=status)
