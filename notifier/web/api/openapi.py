"""The OpenAPI 3.1 document of API v1, built from the operations the handlers declare and the pydantic models they
parse and answer with: what the document says is what the code does."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from notifier.web.api.plumbing import OPERATIONS, Operation, routes
from notifier.web.api.schemas import Problem

REF = "#/components/schemas/{model}"
PROBLEM_TITLES = {
    400: "The query or body is malformed",
    401: "No API key, or one unknown, revoked or expired",
    404: "No such thing, or not this partner's",
    415: "The body is not JSON",
    422: "The body (or a topic query) is well formed but not valid; each invalid field is named in errors",
    429: "Over the partner's rate limit; Retry-After says when to try again",
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    params = []
    for name in re.findall(r"{(\w+)}", path):
        schema: dict[str, Any] = {"type": "string"} if name == "slug" else {"type": "integer", "minimum": 1}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _inline(prop)}
        | ({"description": prop["description"]} if "description" in prop else {})
        for name, prop in schema["properties"].items()
    ]


def _inline(prop: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in prop.items() if k not in ("title", "description")}


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"apiKey": []}],
        "parameters": _path_parameters(op.path) + (_query_parameters(op.query) if op.query else []),
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    responses: dict[str, Any] = {}
    if op.response is None:
        responses[str(op.status)] = {"description": "Done; no content"}
    else:
        responses[str(op.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
        }
        if op.operation_id == "create_subscriber":
            responses["200"] = {"description": "The partner already had this subscriber",
                                "content": {"application/json": {"schema": refs[(op.response, "serialization")]}}}
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    for status in op.problems:
        responses[str(status)] = {"description": PROBLEM_TITLES.get(status, "Problem"), "content": problem}
    out["responses"] = responses
    return out


def _links(paths: dict[str, dict[str, Any]]) -> None:
    """Link each creating POST's answer to the operations on what it made (`{id}` from the answer's `id`), so
    clients and testing tools can follow them."""
    for path, ops in paths.items():
        created = ops.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = {}
        for other, other_ops in paths.items():
            if other.startswith(f"{path}/{{id}}"):
                for op in other_ops.values():
                    links[op["operationId"]] = {
                        "operationId": op["operationId"], "parameters": {"id": "$response.body#/id"},
                    }
        if links:
            created["links"] = links


@cache
def openapi_document() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for op in OPERATIONS:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    _links(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notifier API",
            "version": "1",
            "description": "Councils' meetings, items and change events; subscribers and subscriptions kept on "
            "behalf of a partner's users; signed webhook endpoints. Errors are RFC 9457 problems; lists are "
            '`{"items": [...], "next": cursor}` and take `?limit=&cursor=`.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "a partner's API key"}},
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
