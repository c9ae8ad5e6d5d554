"""What every API handler shares: the operation registry, authentication, parsing, problems and cursor pages.

A handler is declared with `@operation(...)`, naming its body, query and response models. The decorator registers
the route, checks the API key and the rate limit, parses the body and the query through those models (a 400, 415
or 422 problem naming each field otherwise) and passes them in; `openapi` builds the document from the same
declarations. Every string that reaches PostgreSQL is checked for what it cannot store (NUL, lone surrogates).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from notifier.partners import partner_for_key
from notifier.subscriptions import FilterError
from notifier.web.keys import POOL, REDIS
from notifier.web.problems import Problem

routes = web.RouteTableDef()

PARTNER = web.RequestKey("partner", dict)  # set by `authenticated`
Handler = Callable[..., Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    status: int  # the success status
    response: type[BaseModel] | None  # None: no body (204)
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    problems: tuple[int, ...]


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    tag: str,
    summary: str,
    status: int = 200,
    response: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    problems: tuple[int, ...] = (),
) -> Callable[[Handler], Handler]:
    """Declare an API operation: its route, models and the problems it may answer."""

    def register(handler: Handler) -> Handler:
        problems_all = {401, 429, *problems}
        if query is not None:
            problems_all.add(400)
        if body is not None:
            problems_all.update((400, 415, 422))
        if "{" in path:
            problems_all.add(404)
        OPERATIONS.append(
            Operation(method, path, handler.__name__, summary, tag, status, response, body, query,
                      tuple(sorted(problems_all)))
        )
        wants = inspect.signature(handler).parameters

        async def run(request: web.Request) -> web.StreamResponse:
            await authenticate(request)
            kwargs: dict[str, Any] = {}
            if query is not None:
                kwargs["query"] = parse_query(request, query)
            if body is not None:
                kwargs["body"] = await parse_request(request, body)
            return await handler(request, **{k: v for k, v in kwargs.items() if k in wants})

        run.__name__ = handler.__name__
        routes.route(method, path)(run)
        return handler

    return register


# ---- authentication ----


async def authenticate(request: web.Request) -> None:
    auth = request.headers.get("Authorization", "")
    scheme, _, key = auth.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <API key>")
    partner = await partner_for_key(request.app[POOL], key.strip())
    if partner is None:
        raise Problem(401, "Unauthorized", "unknown, revoked or expired API key")
    await _rate_limit(request, partner)
    request[PARTNER] = partner


def partner_id(request: web.Request) -> int:
    value: int = request[PARTNER]["id"]
    return value


async def _rate_limit(request: web.Request, partner: dict[str, Any]) -> None:
    """A fixed one-minute window per partner, counted in Redis so every web process shares it."""
    window = int(time.time() // 60)
    key = f"notifier:rate:{partner['id']}:{window}"
    redis = request.app[REDIS]
    try:
        count = await redis.incr(key)
        if count == 1:
            await redis.expire(key, 120)
    except Exception:  # Redis down: serve rather than fail closed; /readyz reports Redis
        return
    limit = partner["rate_limit_per_minute"]
    if count > limit:
        raise Problem(
            429, "Too Many Requests", f"limit is {limit} requests a minute", retry_after=60 - int(time.time()) % 60
        )


# ---- bodies and queries ----


async def parse_request(request: web.Request, model: type[M]) -> M:
    """The request body as `model`, or a 400 (not JSON) / 415 / 422 (invalid, with every error) problem."""
    if request.content_type != "application/json":
        raise Problem(415, "Unsupported Media Type", "send a JSON body with Content-Type: application/json")
    try:
        raw = await request.read()
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem(400, "Bad Request", f"the body is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise Problem(400, "Bad Request", "the body must be a JSON object")
    bad = _unstorable(data, "")
    if bad is not None:
        raise Problem(422, "Unprocessable Content", "the body is not valid", errors=[bad])
    try:
        # strict: JSON's types as they are (no "1" for 1, no false for 0, no numbers for dates)
        return model.model_validate_json(raw, strict=True)
    except ValidationError as e:
        raise Problem(422, "Unprocessable Content", "the body is not valid", errors=errors_of(e)) from e


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as `model` (a parameter given twice: the last), or a 400 problem naming each field."""
    values = {k: request.query.getall(k)[-1] for k in request.query}
    for name, value in values.items():
        bad = _unstorable(value, name)
        if bad is not None:
            raise Problem(400, "Bad Request", "the query is not valid", errors=[bad])
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise Problem(400, "Bad Request", "the query is not valid", errors=errors_of(e)) from e


def _unstorable(value: Any, at: str) -> dict[str, str] | None:
    """The first string PostgreSQL could not store (a NUL, an unpaired surrogate), as an error naming its field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return {"field": at, "message": "text must be valid Unicode", "type": "string_unicode"}
        if "\x00" in value:
            return {"field": at, "message": "text must not contain NUL characters", "type": "string_nul"}
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _unstorable(k, at) or _unstorable(v, f"{at}.{k}" if at else str(k))
            if bad is not None:
                return bad
    if isinstance(value, list):
        for i, v in enumerate(value):
            bad = _unstorable(v, f"{at}.{i}")
            if bad is not None:
                return bad
    return None


def errors_of(e: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in e.errors(include_url=False, include_input=False, include_context=False)
    ]


def filter_problem(e: FilterError) -> Problem:
    err: dict[str, Any] = {"field": f"filter.{e.field}", "message": str(e)}
    if e.position is not None:
        err["position"] = e.position
    return Problem(422, "Unprocessable Content", str(e), errors=[err])


# ---- answers ----


def respond(model: BaseModel, status: int = 200) -> web.Response:
    # json.dumps rather than model_dump_json: times keep their "+00:00" offset (ISO 8601 as Python writes it),
    # as every answer of this API always has; pydantic would write "Z".
    body = json.dumps(model.model_dump(mode="python"), default=_json_default)
    return web.Response(text=body, status=status, content_type="application/json")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except ValueError as e:
        raise Problem(404, "Not Found") from e
    if not 0 < value < 2**63:
        raise Problem(404, "Not Found")
    return value


def decode_cursor(cursor: str | None) -> int:
    """The id a cursor stands for (0 for none)."""
    if not cursor:
        return 0
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise Problem(400, "Bad Request", "cursor is not one this API gave out",
                      errors=[{"field": "cursor", "message": "not a cursor this API gave out"}]) from e
    if not 0 <= value < 2**63:
        raise Problem(400, "Bad Request", "cursor is not one this API gave out",
                      errors=[{"field": "cursor", "message": "not a cursor this API gave out"}])
    return value


def make_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def page_of(rows: list[dict[str, Any]], limit: int, id_key: str = "id") -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` rows (fetched as limit + 1) and the cursor for the rest, if there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, make_cursor(rows[-1][id_key]) if more and rows else None
