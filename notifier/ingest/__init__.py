"""Polling councils' systems and turning what they publish into items and events.

fetch.py is the HTTP client, poll.py one source's poll, write.py what a successful poll writes, and below them the
pure diff.py (stored record vs new → events), with normalise.py (content hash, canonical values) and summaries.py
(each event's line in words).
"""
