"""Matching events to subscriptions: the cursor over events (matcher) and history search and preview (search)."""
