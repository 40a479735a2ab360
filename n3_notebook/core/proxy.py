"""Proxies from the environment, read the way curl, requests and httpx read them.

HTTPS_PROXY / HTTP_PROXY pick the proxy for https:// and http:// URLs, ALL_PROXY serves
both when the specific one is unset (lower-case names win over upper-case, as in curl);
credentials in the proxy URL become a Proxy-Authorization header. NO_PROXY lists hosts
("example.com" also matches its subdomains, ".example.com" only them), IP addresses,
networks ("10.0.0.0/8") or "*" for everything.

Written here rather than taken from aiohttp's trust_env because that reads neither
ALL_PROXY nor networks in NO_PROXY, skips https:// proxies, and also turns on .netrc
credentials for the API hosts themselves (which would clash with the provider's own
Authorization header)."""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError

__all__ = ["Proxy", "ProxyConfig"]

_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy URL without its credentials, and the header that carries them."""

    url: str
    headers: Mapping[str, str]

    def __repr__(self) -> str:  # the header holds the password: never shown
        return f"Proxy({self.url!r})"


class ProxyConfig:
    """The proxies of one environment; `for_url(scheme, host)` picks one or None."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        get = _getter(env)
        fallback = get("all_proxy")
        self._by_scheme: dict[str, Proxy | None] = {}
        for scheme in _SCHEMES:
            raw = get(f"{scheme}_proxy") or fallback
            self._by_scheme[scheme] = _parse(raw, f"{scheme.upper()}_PROXY") if raw else None
        self._no_proxy = _no_proxy_rules(get("no_proxy") or "")

    @property
    def enabled(self) -> bool:
        return any(self._by_scheme.values())

    def for_url(self, scheme: str, host: str) -> Proxy | None:
        proxy = self._by_scheme.get(scheme)
        if proxy is None or self._bypass(host):
            return None
        return proxy

    def _bypass(self, host: str) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for rule in self._no_proxy:
            if rule == "*":
                return True
            if isinstance(rule, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                if address is not None and address.version == rule.version and address in rule:
                    return True
            elif rule.startswith("."):
                if host.endswith(rule):
                    return True
            elif host == rule or host.endswith("." + rule):
                return True
        return False


def _getter(env: Mapping[str, str]):  # type: ignore[no-untyped-def]
    def get(name: str) -> str | None:
        value = env.get(name) or env.get(name.upper())
        return value.strip() if value and value.strip() else None

    return get


def _parse(raw: str, var: str) -> Proxy:
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ConfigurationError(
            f"{var}={_masked(raw)!r} is not a proxy this client can use: give an http:// or "
            "https:// proxy URL (http://[user:password@]host:port); SOCKS proxies are not "
            "supported."
        )
    headers: dict[str, str] = {}
    if parts.username is not None:
        creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = f":{parts.port}" if parts.port else ""
    return Proxy(f"{parts.scheme}://{host}{port}", headers)


def _masked(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.password:
        return raw.replace(":" + parts.password + "@", ":***@", 1)
    return raw


def _no_proxy_rules(
    value: str,
) -> list[str | ipaddress.IPv4Network | ipaddress.IPv6Network]:
    rules: list[str | ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in value.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            rules.append("*")
            continue
        try:
            rules.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = entry.split("://", 1)[-1]
        if host.count(":") == 1:  # host:port - the port is not matched
            host = host.split(":", 1)[0]
        rules.append(host.rstrip("."))
    return rules
