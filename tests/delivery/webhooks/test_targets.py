"""Which webhook targets are refused: every disguise of a private address, at create time and at connect time."""

from __future__ import annotations

import pytest
from aiohttp.resolver import DefaultResolver

from notifier.delivery.webhooks.targets import CheckingResolver, TargetRefused, check_url, vet_url
from tests.delivery.webhooks.resolver import TableResolver

REFUSED_URLS = [
    "http://localhost/hook",
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.251/hook",
    "http://[ff02::1]/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://192.0.2.10/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[64:ff9b::a00:1]/hook",
    "http://[64:ff9b:1::1]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://[2002:c0a8:101::]/hook",
    "http://[2001:db8::1]/hook",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_target_private_addresses_are_refused(url: str) -> None:
    # the real resolver: 127.1, 2130706433 and 0x7f000001 are read as addresses by getaddrinfo itself
    resolver = DefaultResolver()
    with pytest.raises(TargetRefused):
        await vet_url(url, resolver, allow_private=False)
    await resolver.close()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/hook", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("http://user:pass@partner.example/hook", "user name or password"),
        ("http://user@partner.example/hook", "user name or password"),
        ("https:///hook", "no host"),
        ("not a url", "http and https"),
        ("http://partner.example:99999/hook", "not a valid URL"),
    ],
)
def test_target_bad_forms_are_refused(url: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["93.184.216.34", "10.1.2.3"], ["::1"], ["169.254.169.254"], ["fd00:ec2::254"], []],
)
async def test_target_a_name_with_any_private_address_is_refused(addresses: list[str]) -> None:
    resolver = TableResolver({"partner.example": addresses})
    with pytest.raises(TargetRefused):
        await vet_url("https://partner.example/hook", resolver, allow_private=False)


@pytest.mark.parametrize(
    "url", ["https://partner.example/hook", "http://93.184.216.34/hook", "https://[2606:4700::1]:8443/hook"]
)
async def test_target_public_addresses_are_allowed(url: str) -> None:
    resolver = TableResolver({"partner.example": ["93.184.216.34", "2606:4700::6810:85e5"]})
    target = await vet_url(url, resolver, allow_private=False)
    assert str(target.url) == url


async def test_target_unknown_name_is_refused() -> None:
    with pytest.raises(TargetRefused, match="does not resolve"):
        await vet_url("https://nowhere.example/hook", TableResolver(), allow_private=False)


async def test_target_private_allowed_when_configured() -> None:
    resolver = TableResolver({"receiver.local": ["127.0.0.1"]})
    target = await vet_url("http://receiver.local:8080/hook", resolver, allow_private=True)
    assert target.port == 8080
    assert check_url("http://[::1]/hook", allow_private=True).literal is not None


async def test_checking_resolver_refuses_what_the_connector_would_use() -> None:
    table = TableResolver({"partner.example": ["93.184.216.34"]})
    checking = CheckingResolver(table)
    assert [a["host"] for a in await checking.resolve("partner.example", 443)] == ["93.184.216.34"]
    table.table["partner.example"] = ["93.184.216.34", "127.0.0.1"]  # the DNS answer changes
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1"):
        await checking.resolve("partner.example", 443)
