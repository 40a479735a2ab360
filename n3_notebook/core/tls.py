"""TLS trust: which certificates a provider's connection accepts, and what a refused
certificate means in words.

Default trust is certifi's bundle plus what the user configured the way every Python client
reads it: SSL_CERT_FILE and REQUESTS_CA_BUNDLE (a PEM file), SSL_CERT_DIR (a hashed
directory). Added to certifi rather than replacing it, so a corporate CA given there and
the public CAs both work. N3_NATIVE_TLS=1 (or verify="system") uses the operating system's
trust store through `truststore`, as pip and uv offer. `verify=` takes a path (file or
directory), an ssl.SSLContext, "system", or False (no verification: warned about loudly).
"""

from __future__ import annotations

import functools
import os
import ssl
import warnings
from typing import Final

import certifi
import truststore

from .errors import ConfigurationError

__all__ = [
    "NATIVE_TLS_ENV",
    "VerifyTypes",
    "certificate_problem",
    "describe_certificate_problem",
    "ssl_context",
    "verify_from_text",
]

VerifyTypes = bool | str | os.PathLike[str] | ssl.SSLContext

NATIVE_TLS_ENV: Final = "N3_NATIVE_TLS"
_CA_FILE_VARS: Final = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
_CA_DIR_VAR: Final = "SSL_CERT_DIR"
_TRUE = ("1", "true", "yes", "on")

# OpenSSL X509 verify codes (x509_vfy.h) grouped by what the user has to do about them.
_EXPIRED_CODES: Final = {9: "is not valid yet", 10: "has expired"}
_UNTRUSTED_CODES: Final = {2, 18, 19, 20, 21, 27}
_HOSTNAME_CODES: Final = {62, 64}


def ssl_context(verify: VerifyTypes = True) -> ssl.SSLContext:
    """The SSL context for `verify` (see the module docstring); the default ones are made
    once per configuration, since loading a CA bundle takes milliseconds."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        warnings.warn(
            "TLS certificate verification is OFF (verify=False): anyone on the network path "
            "can read and change the traffic, API key included. Use it only against a test "
            "server; for a private CA pass verify='/path/to/ca.pem' or set SSL_CERT_FILE.",
            stacklevel=3,
        )
        return _unverified()
    if verify is True:
        native = os.environ.get(NATIVE_TLS_ENV, "").strip().lower() in _TRUE
        if native:
            return _system()
        files = tuple(os.environ[v] for v in _CA_FILE_VARS if os.environ.get(v))
        return _default(files, os.environ.get(_CA_DIR_VAR) or None)
    path = os.fspath(verify)
    if path == "system":
        return _system()
    if os.path.isdir(path):
        return _default((), path)
    if not os.path.isfile(path):
        raise ConfigurationError(
            f"verify={path!r} is neither a CA bundle file nor a certificate directory. Pass "
            "the path of a PEM file with your CA certificates (or a directory of them), "
            "verify=True for the default trust, or verify='system' for the OS trust store."
        )
    return _default((path,), None)


def verify_from_text(text: str) -> VerifyTypes:
    """A `verify` value from a setting's text: "" is the default trust, "off" (or "false",
    "0", "no") turns verification off, anything else is "system" or a path."""
    value = text.strip()
    if not value:
        return True
    if value.lower() in ("off", "false", "0", "no"):
        return False
    return value


@functools.lru_cache(maxsize=8)
def _default(files: tuple[str, ...], directory: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certifi.where())
    for path in files:
        try:
            ctx.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the CA certificates in {path!r} ({exc}). Point SSL_CERT_FILE "
                "(or verify=) at a readable PEM file, or unset it."
            ) from None
    if directory:
        ctx.load_verify_locations(capath=directory)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@functools.lru_cache(maxsize=1)
def _system() -> ssl.SSLContext:
    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx  # truststore's context is an ssl.SSLContext


@functools.lru_cache(maxsize=1)
def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def certificate_problem(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure in an exception's chain, if there is one."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, ssl.SSLCertVerificationError):
                return arg
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def describe_certificate_problem(err: ssl.SSLCertVerificationError, host: str) -> str:
    """One paragraph: which certificate problem `host` has and how to fix it."""
    code = getattr(err, "verify_code", None)
    detail = getattr(err, "verify_message", None) or str(err)
    if code in _HOSTNAME_CODES or "hostname" in detail.lower() or "match" in detail.lower():
        return (
            f"The TLS certificate of {host} does not name that host ({detail}), so the "
            "connection was refused. Check the base URL: use the host name the certificate "
            "was issued for (not an IP address or an alias)."
        )
    if code in _EXPIRED_CODES:
        return (
            f"The TLS certificate of {host} {_EXPIRED_CODES[code]} ({detail}), so the "
            "connection was refused. The server must renew its certificate; also check that "
            "this machine's clock is right."
        )
    if code in _UNTRUSTED_CODES or "self" in detail.lower() or "issuer" in detail.lower():
        return (
            f"The TLS certificate of {host} is self-signed or signed by a CA this machine "
            f"does not trust ({detail}), so the connection was refused. Behind a company "
            "proxy or with a private CA, point SSL_CERT_FILE at your CA bundle (PEM), pass "
            "verify='/path/to/ca.pem' to the provider, or set N3_NATIVE_TLS=1 to use the "
            "operating system's trust store."
        )
    return (
        f"The TLS certificate of {host} could not be verified ({detail}), so the connection "
        "was refused. Set SSL_CERT_FILE or pass verify='/path/to/ca.pem' if the server uses "
        "a private CA."
    )
