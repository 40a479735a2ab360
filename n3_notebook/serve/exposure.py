"""Who can reach the service: listening beyond loopback without a token is refused.

The service spends its owner's provider credits, so on any address other hosts can reach
it needs a token (N3_SERVE_TOKEN, a token file), or the owner's explicit
`--insecure-no-auth` (N3_SERVE_INSECURE_NO_AUTH=1), which is then logged at every start."""

from __future__ import annotations

import ipaddress
import logging
import socket

from .settings import INSECURE_ENV, TOKEN_ENV, TOKEN_FILE_ENV

logger = logging.getLogger("n3_notebook.serve")

INSECURE_WARNING = (
    "serving on %s WITHOUT authentication (--insecure-no-auth): anyone who can reach this "
    "address can spend the provider keys of this server"
)


class InsecureBindError(ValueError):
    """Listening beyond loopback without a token and without --insecure-no-auth."""


def is_loopback(host: str) -> bool:
    """True when only this machine can connect: a loopback address, `localhost`, a Unix
    socket (`unix:/path`, gunicorn's syntax), or a name that resolves to loopback only."""
    host = host.strip()
    if host.startswith("unix:") or host.startswith("fd://"):
        return True
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if bare.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        pass
    if not bare:
        return False  # "" binds every interface
    try:
        infos = socket.getaddrinfo(bare, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_exposure(host: str, has_tokens: bool, insecure: bool) -> str | None:
    """Raise InsecureBindError (a one-paragraph message saying what to do) when `host` is
    reachable from other machines and no token is set. When `insecure` accepts that risk,
    it is logged, and returned as a warning for the caller to show at its start; None when
    there is nothing to warn about."""
    if has_tokens or is_loopback(host):
        return None
    if insecure:
        logger.warning(INSECURE_WARNING, host)
        return "warning: " + INSECURE_WARNING % (host,)
    raise InsecureBindError(
        f"refusing to listen on {host!r} without authentication: every host that can reach "
        "this address could spend the provider keys of this server. Set a bearer token "
        f"({TOKEN_ENV}=<a long random string>, or --token-file FILE / {TOKEN_FILE_ENV} with "
        "one `NAME TOKEN` a line), or listen on 127.0.0.1 behind your own proxy; to accept "
        f"the risk, pass --insecure-no-auth ({INSECURE_ENV}=1)."
    )


__all__ = ["INSECURE_WARNING", "InsecureBindError", "check_exposure", "is_loopback"]
