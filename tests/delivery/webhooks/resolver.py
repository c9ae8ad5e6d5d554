"""A DNS resolver answering from a table, so tests can say what a name resolves to, and change it."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult


class TableResolver(AbstractResolver):
    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the table")
        return [
            ResolveResult(hostname=host, host=ip, port=port,
                          family=socket.AF_INET6 if ":" in ip else socket.AF_INET, proto=0,
                          flags=socket.AI_NUMERICHOST)
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        pass
