"""`run_doctor()`: check every provider from this machine, concurrently, within a timeout.

Per provider, in order, stopping at the first layer that fails (the next one could only
fail too): key present, proxy choice, DNS, TCP connect, TLS handshake, an authenticated
models call (status, how many models, the server's clock), and whether the default model
is listed. Each failure comes with a next step. Keys are registered with redact() before
anything is probed, so no message can echo one."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpx

from ..core.base import BaseProvider
from ..core.errors import AuthenticationError, LLMError
from ..core.offline import is_offline, offline_endpoint
from ..core.redact import mask_url, redact, register_secret
from ..core.registry import get_provider_class
from ..core.retry import RetryConfig
from ..providers import listing
from ..providers.ollama import normalize_host
from .probes import Probe, clock_skew, endpoint, probe_dns, probe_tcp, probe_tls, proxy_for
from .probes import tls_context as make_tls_context
from .report import DoctorReport, ProviderCheck

__all__ = ["DEFAULT_PROVIDERS", "DEFAULT_TIMEOUT", "check_provider", "run_doctor"]

DEFAULT_PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "gemini", "cohere", "ollama")
DEFAULT_TIMEOUT = 15.0
CLOCK_SKEW_WARNING = 300.0  # seconds

KEY_PAGES: dict[str, str] = {
    "openai": "https://platform.openai.com/api-keys",
    "anthropic": "https://console.anthropic.com/settings/keys",
    "gemini": "https://aistudio.google.com/apikey",
    "cohere": "https://dashboard.cohere.com/api-keys",
}


async def run_doctor(
    providers: Iterable[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    verify: str | ssl.SSLContext | None = None,
) -> DoctorReport:
    """Check each provider (all built-in ones by default) at once; each gets `timeout`
    seconds in all. `verify` is a CA file or SSL context for the TLS probe (default: the
    environment's SSL_CERT_FILE / SSL_CERT_DIR, else certifi)."""
    names = list(providers) if providers else list(DEFAULT_PROVIDERS)
    context = make_tls_context(verify)
    checks = await asyncio.gather(*(check_provider(n, timeout, context) for n in names))
    return DoctorReport(list(checks), timeout, offline=is_offline())


class _Stage:
    """Which probe is running, so a timeout can say where it stopped."""

    def __init__(self) -> None:
        self.name = "dns"


async def check_provider(name: str, timeout: float, context: ssl.SSLContext) -> ProviderCheck:
    check = ProviderCheck(name)
    stage = _Stage()
    try:
        async with asyncio.timeout(timeout):
            await _check(check, stage, timeout, context)
    except TimeoutError:
        check.timed_out = True
        setattr(check, stage.name, Probe(False, f"no answer within {timeout:g} s"))
        check.step(
            f"The {stage.name.upper()} step took longer than {timeout:g} s: a firewall may be "
            "dropping the traffic, or this network needs a proxy (set HTTPS_PROXY); try "
            "again with a longer --timeout to tell a slow network from a blocked one."
        )
    except LLMError as exc:  # an unknown provider name, a bad base URL...
        check.models = Probe(False, redact(str(exc)))
        check.step(exc.hint or "Check the provider's name and settings.")
    return check


async def _check(
    check: ProviderCheck, stage: _Stage, timeout: float, context: ssl.SSLContext
) -> None:
    cls = get_provider_class(check.provider)
    display = cls.display_name or cls.name
    key_var, key = _env_first(cls.env_keys)
    base_var, base_url = _env_first(cls.env_base_urls)
    offline = is_offline()
    if offline:
        base_url, key = offline_endpoint(cls.name)
        key_var, base_var = "offline emulator", None
    base_url = (base_url or cls.default_base_url).rstrip("/")
    if cls.name == "ollama":
        base_url = normalize_host(base_url)
    register_secret(key)
    check.key_present = bool(key)
    check.key = (
        f"{key_var} (set, {len(key)} chars)"
        if key and key_var
        else ("not needed" if not cls.requires_key else f"not set ({', '.join(cls.env_keys)})")
    )
    check.configured = bool(key) if cls.requires_key else bool(base_var or offline)
    check.base_url = mask_url(base_url)
    check.default_model = cls.default_model
    if cls.requires_key and not key:
        check.step(
            f"To use {display}, set {cls.env_keys[0]}"
            + (f" (keys: {KEY_PAGES[cls.name]})." if cls.name in KEY_PAGES else ".")
        )

    target = endpoint(base_url)
    proxy, bypassed = proxy_for(base_url)
    use_proxy = proxy if proxy and not bypassed else None
    check.proxy = (
        "none"
        if not proxy
        else f"{mask_url(proxy)} (bypassed: NO_PROXY)"
        if bypassed
        else mask_url(proxy)
    )
    host, port = target.host, target.port
    if use_proxy:
        hop = endpoint(use_proxy if "://" in use_proxy else f"http://{use_proxy}")
        host, port = hop.host, hop.port
    where = f"the proxy {host}" if use_proxy else host

    stage.name = "dns"
    check.dns = await probe_dns(host, port)
    if check.dns.failed:
        check.step(
            f"DNS cannot resolve {where}: check the host name"
            + (f" in {base_var}" if base_var else "")
            + ", your network or VPN; on a corporate network you may need HTTPS_PROXY."
        )
        return
    stage.name = "tcp"
    check.tcp = await probe_tcp(host, port)
    if check.tcp.failed:
        if cls.name == "ollama" and not use_proxy:
            check.step(cls.unreachable_hint or "Start Ollama with `ollama serve`.")
        else:
            check.step(
                f"Nothing accepts connections at {where}:{port}: check the base URL"
                + (f" ({base_var})" if base_var else "")
                + ", or whether a firewall requires a proxy (HTTPS_PROXY)."
            )
        return
    if target.scheme == "https":
        stage.name = "tls"
        check.tls = await probe_tls(target.host, target.port, context, use_proxy)
        if check.tls.failed:
            check.step(_tls_step(check.tls, use_proxy))
            return
    else:
        check.tls = Probe(None, "plain HTTP")
    if cls.requires_key and not key:
        check.models = Probe(None, "no key")
        return
    stage.name = "models"
    await _models_call(check, cls, base_url, key, key_var, base_var, timeout)


def _tls_step(probe: Probe, proxy: str | None) -> str:
    if "not trusted" in probe.detail:
        return (
            "The server's certificate is not trusted"
            + (f" (issued by {probe.issuer})" if probe.issuer else "")
            + ": if your network inspects TLS, set SSL_CERT_FILE to your organisation's CA "
            "bundle (a PEM file); otherwise check the base URL and this machine's clock."
        )
    if proxy and "proxy" in probe.detail:
        return f"Check HTTPS_PROXY ({mask_url(proxy)}), or add the host to NO_PROXY."
    return "The TLS handshake failed: check the base URL's scheme and port (https on 443)."


async def _models_call(
    check: ProviderCheck,
    cls: type[BaseProvider],
    base_url: str,
    key: str | None,
    key_var: str | None,
    base_var: str | None,
    timeout: float,
) -> None:
    async with cls(
        api_key=key or None,
        base_url=base_url,
        timeout=timeout,
        retry=RetryConfig(max_attempts=1),
    ) as provider:
        spec = listing.first_page(provider)
        request = provider.client.build_request(
            spec.method,
            provider.base_url + spec.path,
            headers=provider.auth_headers(),
            params=spec.params or None,
        )
        sent = time.time()
        try:
            response = await provider.client.send(request)
        except httpx.HTTPError as exc:
            check.models = Probe(False, redact(f"{type(exc).__name__}: {exc}"))
            check.step("The models call could not complete: see the error; check the proxy.")
            return
        check.clock_skew = clock_skew(response.headers.get("date"), sent, time.time())
        check.models_status = response.status_code
        if response.status_code != 200:
            payload = _payload(response)
            message = _message(provider, response, payload)
            status = response.status_code
            if issubclass(provider.error_class(status, payload), AuthenticationError):
                status = 401  # Gemini words a bad key as a 400
            check.models = Probe(False, f"HTTP {response.status_code}: {message}")
            check.step(_status_step(check, cls, status, key_var, base_var))
            return
        try:
            models = await provider.list_models(refresh=True)
        except LLMError as exc:
            check.models = Probe(False, redact(exc.message))
            check.step(exc.hint or "The models listing could not be read: try again later.")
            return
    check.models_count = len(models)
    check.models = Probe(True, f"HTTP 200, {len(models)} models")
    check.default_available = cls.default_model in listing.model_ids(models)
    if not check.default_available:
        check.step(
            f"This key cannot use the default model {cls.default_model}: pick one from "
            f"`%llm models {cls.name}` and name it, e.g. `%%llm {cls.name}:<model>`."
        )
    if check.clock_skew is not None and abs(check.clock_skew) > CLOCK_SKEW_WARNING:
        check.step(
            f"This machine's clock is {abs(check.clock_skew):.0f} s off the server's: sync it "
            "(NTP); certificates and signed URLs fail with a wrong clock."
        )


def _payload(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _message(provider: BaseProvider, response: httpx.Response, payload: Any) -> str:
    text = provider.error_message(payload) if payload is not None else None
    text = text or response.text.strip()[:200] or response.reason_phrase
    return redact(" ".join(text.split()))


def _status_step(
    check: ProviderCheck,
    cls: type[BaseProvider],
    status: int,
    key_var: str | None,
    base_var: str | None,
) -> str:
    display = cls.display_name or cls.name
    if status == 401:
        page = KEY_PAGES.get(cls.name)
        return (
            f"{display} refused the key in {key_var}: check it was copied whole and is a "
            f"{display} key" + (f"; make a new one at {page}." if page else ".")
        )
    if status == 403:
        return (
            f"The key in {key_var} may not list models (403): check its permissions, project "
            "or organisation, and whether the API is enabled for it."
        )
    if status == 404:
        where = f" ({base_var})" if base_var else ""
        return f"{check.base_url} has no models endpoint: check the base URL{where}."
    if status == 429:
        return "Rate limited or out of credit (429): check the plan and billing, then retry."
    if status >= 500:
        return f"{display} answered {status}: its service may be in trouble; try again later."
    return f"{display} answered {status}: see the message, and check the base URL and key."


def _env_first(names: Iterable[str]) -> tuple[str | None, str | None]:
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return None, None
