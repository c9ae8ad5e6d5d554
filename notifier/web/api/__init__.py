"""JSON API v1 for partner organisations.

`plumbing` holds what every handler shares (authentication, bodies and queries parsed through pydantic models,
problems, cursor pages) and the registry of operations; `catalogue` (councils, items, events), `people`
(subscribers, subscriptions, preview) and `webhooks` (endpoints) hold the handlers; `openapi` builds the OpenAPI
document from the same registry and models, so the document cannot drift from what the handlers do.
"""

from notifier.web.api import catalogue, openapi, people, webhooks
from notifier.web.api.plumbing import routes

__all__ = ["catalogue", "openapi", "people", "routes", "webhooks"]
