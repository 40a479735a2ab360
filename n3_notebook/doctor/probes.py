"""Network probes for the doctor, one per layer: proxy choice, DNS, TCP connect, TLS
handshake (through an HTTP CONNECT tunnel when a proxy applies) and the server's clock.

Hand-written on asyncio's own streams and the ssl module on purpose: an HTTP client
hides exactly what the doctor must show (which address answered, how long the handshake
took, which certificate the server sent and who issued it), and it must keep working
whichever HTTP engine the providers use."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

import certifi

__all__ = [
    "Endpoint",
    "Probe",
    "clock_skew",
    "endpoint",
    "probe_dns",
    "probe_tcp",
    "probe_tls",
    "proxy_for",
    "tls_context",
]

EXPIRY_WARNING_DAYS = 14


@dataclass(slots=True)
class Probe:
    """One probe's outcome: ok True / False, or None when it was not run."""

    ok: bool | None
    detail: str
    ms: float | None = None
    issuer: str | None = None
    expires: str | None = None
    address: str | None = None

    @property
    def failed(self) -> bool:
        return self.ok is False


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int


def endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    scheme = (parts.scheme or "https").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return Endpoint(scheme, parts.hostname or "", port)


def proxy_for(url: str) -> tuple[str | None, bool]:
    """(proxy URL the environment sets for `url` or None, whether NO_PROXY bypasses it)."""
    proxies = urllib.request.getproxies_environment()
    target = endpoint(url)
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy:
        return None, False
    host = f"{target.host}:{target.port}"
    bypass = bool(urllib.request.proxy_bypass(host))  # NO_PROXY (and the OS's own list)
    return proxy, bypass


def tls_context(verify: str | ssl.SSLContext | None = None) -> ssl.SSLContext:
    """What every Python client trusts: an explicit CA file or context, else SSL_CERT_FILE /
    SSL_CERT_DIR from the environment, else certifi's bundle."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    cafile = verify or os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def probe_dns(host: str, port: int) -> Probe:
    start = time.perf_counter()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return Probe(False, f"cannot resolve {host} ({exc.strerror or exc})", _ms(start))
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    shown = ", ".join(addresses[:2]) + (" …" if len(addresses) > 2 else "")
    return Probe(True, shown, _ms(start), address=addresses[0] if addresses else None)


async def probe_tcp(host: str, port: int) -> Probe:
    start = time.perf_counter()
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return Probe(False, f"connection refused by {host}:{port}", _ms(start))
    except OSError as exc:
        return Probe(False, f"cannot connect to {host}:{port} ({exc.strerror or exc})", _ms(start))
    elapsed = _ms(start)
    await _close(writer)
    return Probe(True, f"{host}:{port}", elapsed)


async def probe_tls(
    host: str,
    port: int,
    context: ssl.SSLContext,
    proxy: str | None = None,
) -> Probe:
    """Handshake with host:port (through `proxy` with CONNECT when given) and report the
    certificate's issuer and expiry; a verification failure names the issuer it saw."""
    start = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        if proxy:
            writer = await _tunnel(proxy, host, port)
            start = time.perf_counter()
            await writer.start_tls(context, server_hostname=host)
        else:
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
        elapsed = _ms(start)
        cert = writer.get_extra_info("peercert") or {}
        issuer = _name(cert.get("issuer", ()))
        expires = cert.get("notAfter")
        probe = Probe(True, f"issuer {issuer}", elapsed, issuer=issuer)
        if expires:
            when = datetime.fromtimestamp(ssl.cert_time_to_seconds(expires), UTC)
            probe.expires = when.date().isoformat()
            days = (when - datetime.now(UTC)).days
            probe.detail += f", expires {probe.expires}"
            if days < EXPIRY_WARNING_DAYS:
                probe.detail += f" (in {days} days)"
        return probe
    except ssl.SSLCertVerificationError as exc:
        seen = await _unverified_issuer(host, port, proxy)
        reason = exc.verify_message or exc.reason or str(exc)
        detail = f"certificate not trusted: {reason}"
        if seen:
            detail += f" (issuer {seen})"
        return Probe(False, detail, _ms(start), issuer=seen)
    except ssl.SSLError as exc:
        return Probe(False, f"TLS handshake failed: {exc.reason or exc}", _ms(start))
    except ProxyError as exc:
        return Probe(False, str(exc), _ms(start))
    except OSError as exc:
        return Probe(False, f"TLS connection failed ({exc.strerror or exc})", _ms(start))
    finally:
        if writer is not None:
            await _close(writer)


class ProxyError(Exception):
    """The proxy refused or broke the CONNECT tunnel."""


async def _tunnel(proxy: str, host: str, port: int) -> asyncio.StreamWriter:
    target = endpoint(proxy if "://" in proxy else f"http://{proxy}")
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as exc:
        raise ProxyError(
            f"cannot reach the proxy {target.host}:{target.port} ({exc.strerror or exc})"
        ) from exc
    head = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.username:
        user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        head += f"Proxy-Authorization: Basic {base64.b64encode(user.encode()).decode()}\r\n"
    writer.write((head + "\r\n").encode())
    try:
        answer = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        await _close(writer)
        raise ProxyError("the proxy closed the CONNECT tunnel") from exc
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or fields[1] != "200":
        await _close(writer)
        raise ProxyError(f"the proxy refused CONNECT {host}:{port}: {status_line.strip()}")
    return writer


async def _unverified_issuer(host: str, port: int, proxy: str | None) -> str | None:
    """The issuer of the certificate a server presents, without trusting it (to name an
    interception proxy's CA). Needs the optional `cryptography` package."""
    try:
        from cryptography import x509  # optional: only to name an untrusted issuer
    except ImportError:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer: asyncio.StreamWriter | None = None
    try:
        if proxy:
            writer = await _tunnel(proxy, host, port)
            await writer.start_tls(context, server_hostname=host)
        else:
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        if not der:
            return None
        issuer = x509.load_der_x509_certificate(der).issuer
        names = [a.value for a in issuer if a.oid._name in ("organizationName", "commonName")]
        return " / ".join(str(n) for n in names) or issuer.rfc4514_string()
    except (OSError, ssl.SSLError, ProxyError, ValueError):
        return None
    finally:
        if writer is not None:
            await _close(writer)


def _name(rdns: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    fields = {key: value for rdn in rdns for key, value in rdn}
    parts = [fields[k] for k in ("organizationName", "commonName") if k in fields]
    return " / ".join(dict.fromkeys(parts)) or "unknown"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def clock_skew(date_header: str | None, sent: float, received: float) -> float | None:
    """Seconds the server's clock is ahead of ours (negative: behind), from its Date
    header and the wall-clock times the request left and the answer came back."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    # Date is the server's time cut to the whole second (0.5 s early on average), taken
    # somewhere in the round trip: compare its middle with the round trip's.
    return server.timestamp() + 0.5 - (sent + received) / 2
