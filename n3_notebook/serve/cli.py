"""`python -m n3_notebook serve FILE [--host 127.0.0.1] [--port 8000] [--workers N] ...`

FILE is a chain file (the %%chain syntax; see n3_notebook.serve.loader) or a notebook whose
`%%chain NAME` cells define the chains. The file is checked here first (a syntax error,
an unknown model or a missing key stops the command before any worker starts), then
uvicorn serves the app factory `n3_notebook.serve.app:app_from_env` with N workers; the
file path and the settings reach the workers through N3_SERVE_* environment variables.

On SIGTERM (or Ctrl-C) the server stops accepting, running requests may finish for the
grace period, then they are stopped cleanly (streams end with an `error` event of type
"shutdown" and `done`). With several workers, /metrics covers all of them (a temporary
PROMETHEUS_MULTIPROC_DIR unless one is set).

--config gateway.toml configures the OpenAI-compatible gateway (/v1/chat/completions):
routes with fallbacks, key pools, per-upstream limits, the circuit breaker; it is checked
here too, and an error names the file, the line and the key.

The service keeps no call log unless --call-log PATH is given (numbers only; prompts and
answers with --call-log-text).

Listening on an address other machines can reach needs a token (N3_SERVE_TOKEN or
--token-file) or --insecure-no-auth (see exposure.py). The request bounds (settings.py's
Limits) come from N3_SERVE_* variables, a few of them from flags here; the bounds on a
request's head are the workers' HTTP protocol's (protocol.py)."""

from __future__ import annotations

import argparse
import copy
import inspect
import logging
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from .. import log
from ..core.types import STREAM_ENV
from .app import create_app
from .exposure import InsecureBindError, check_exposure
from .gateway_config import GatewayConfigError
from .loader import ChainFileError, load_chains
from .loop import FACTORY as LOOP_FACTORY
from .metrics import access_logger
from .protocol import PROTOCOL
from .settings import (
    CORS_ENV,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MODEL_ENV,
    FILE_ENV,
    GATEWAY_CONFIG_ENV,
    GRACE_PERIOD_ENV,
    INSECURE_ENV,
    MAX_CONCURRENT_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    Limits,
    limit_env,
)

APP_FACTORY = "n3_notebook.serve.app:app_from_env"
#: Connections the kernel queues for us (Linux caps it at net.core.somaxconn).
BACKLOG = 4096
#: uvicorn's own backstop after the app's grace period (it cancels what still runs).
BACKSTOP = 5


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m n3_notebook serve",
        description="Serve the chains of a chain file or notebook as HTTP endpoints "
        "(JSON and Server-Sent Events).",
    )
    p.add_argument("file", metavar="FILE", help="a chain file (.n3) or a notebook (.ipynb)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help=f"requests one worker serves at once; more get 503 (default: ${MAX_CONCURRENT_ENV} "
        f"or {DEFAULT_MAX_CONCURRENT})",
    )
    p.add_argument(
        "--grace-period",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds running requests may go on after SIGTERM (default: ${GRACE_PERIOD_ENV} "
        f"or {DEFAULT_GRACE_PERIOD:g})",
    )
    p.add_argument(
        "--default-model", default=None, metavar="MODEL", help="model for steps that name none"
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help=f"bearer tokens, one `NAME TOKEN [key=value ...]` a line (besides ${TOKEN_ENV}; "
        f"default: ${TOKEN_FILE_ENV})",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="listen beyond loopback without any token (anyone who reaches the port spends "
        f"your provider keys; also ${INSECURE_ENV}=1)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help=f"an origin browsers may call from (repeat for several; default: ${CORS_ENV}, "
        "comma-separated; none: CORS off)",
    )
    defaults = Limits()
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        metavar="N",
        help=f"largest request body, else 413 (default: ${limit_env('max_body_bytes')} "
        f"or {defaults.max_body_bytes})",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        metavar="S",
        help="wall-clock seconds a request (a whole stream included) may run, else 504 "
        f"(default: ${limit_env('request_timeout')} or {defaults.request_timeout:g})",
    )
    for limit, env in STREAM_ENV.items():
        p.add_argument(
            f"--{limit.replace('_', '-')}",
            dest=limit,
            type=float,
            default=None,
            metavar="S",
            help=f"stream limit {limit} in seconds, 0 for none (default: ${env} or the "
            "library's default; see StreamConfig)",
        )
    p.add_argument(
        "--config",
        default=None,
        metavar="TOML",
        help="the OpenAI-compatible gateway's routes, key pools, limits and circuit breaker "
        f"(a TOML file; default: ${GATEWAY_CONFIG_ENV})",
    )
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument(
        "--call-log",
        default=None,
        metavar="PATH",
        help="record each call in this SQLite call log (model, tokens, timing, errors; no "
        "prompt or answer text). Default: no call log, the clients' prompts stay off disk",
    )
    p.add_argument(
        "--call-log-text",
        action="store_true",
        help="with --call-log, keep the prompts and answers too (redacted of keys)",
    )
    return p


def _pass_to_workers(args: argparse.Namespace, path: str) -> None:
    """The settings given as flags, as the N3_SERVE_* variables the workers read."""
    os.environ[FILE_ENV] = path
    if args.max_concurrent is not None:
        os.environ[MAX_CONCURRENT_ENV] = str(args.max_concurrent)
    if args.grace_period is not None:
        os.environ[GRACE_PERIOD_ENV] = repr(args.grace_period)
    if args.default_model:
        os.environ[DEFAULT_MODEL_ENV] = args.default_model
    if args.token_file:
        os.environ[TOKEN_FILE_ENV] = os.path.abspath(args.token_file)
    if args.cors_origin:
        os.environ[CORS_ENV] = ",".join(args.cors_origin)
    if args.max_body_bytes is not None:
        os.environ[limit_env("max_body_bytes")] = str(args.max_body_bytes)
    if args.request_timeout is not None:
        os.environ[limit_env("request_timeout")] = repr(args.request_timeout)
    if args.config:
        os.environ[GATEWAY_CONFIG_ENV] = os.path.abspath(args.config)
    for limit, env in STREAM_ENV.items():
        if getattr(args, limit) is not None:
            os.environ[env] = repr(getattr(args, limit))
    _call_log(args)


def _call_log(args: argparse.Namespace) -> None:
    """The service logs calls only when asked (--call-log), and their text only with
    --call-log-text: a server's prompts are its clients', not the operator's notebook
    history. Set here for this process and, through N3_LOG*, for the workers."""
    enabled = args.call_log is not None
    os.environ[log.ENABLE_ENV] = "1" if enabled else "0"
    os.environ[log.TEXT_ENV] = "1" if enabled and args.call_log_text else "0"
    path = os.path.abspath(args.call_log) if enabled else None
    if path is not None:
        os.environ[log.DB_ENV] = path
    log.configure(enabled=enabled, store_text=enabled and args.call_log_text, path=path)


def _log_config(level: str, access_log: bool) -> dict[str, Any]:
    """uvicorn's logging setup plus the service's access log (its own lines, with token
    names; uvicorn's own access log is off)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["n3_access"] = {
        "formatter": "default",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    shown = access_log and level in ("info", "debug")
    config["loggers"][access_logger.name] = {
        "handlers": ["n3_access"],
        "level": "INFO" if shown else "WARNING",
        "propagate": False,
    }
    return config


def raise_fd_limit() -> None:
    """Thousands of streams need thousands of sockets: soft open-file limit up to the hard one."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX, or not allowed
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    path = os.path.abspath(args.file)
    _pass_to_workers(args, path)
    try:
        chains = load_chains(path)
        # checks models, keys, tokens and limits now, before any worker starts
        app = create_app(chains, access_log=False)
        insecure = args.insecure_no_auth or os.environ.get(INSECURE_ENV, "") not in ("", "0")
        warning = check_exposure(args.host, bool(app.state.n3.token_names), insecure)
    except InsecureBindError as exc:
        print(exc, file=sys.stderr)
        return 2
    except GatewayConfigError as exc:
        print(f"cannot use the gateway configuration: {exc}", file=sys.stderr)
        return 2
    except (ChainFileError, ValueError) as exc:
        print(f"cannot serve {args.file}: {exc}", file=sys.stderr)
        return 2
    grace = app.state.n3.lifecycle.grace_period
    keepalive = app.state.n3.limits.keepalive_timeout
    del app
    if warning:
        print(warning, file=sys.stderr, flush=True)
    raise_fd_limit()
    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # One /metrics over every worker (prometheus_client's multiprocess mode).
        metrics_dir = tempfile.mkdtemp(prefix="n3-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    logging.getLogger("n3_notebook").setLevel(logging.WARNING)
    url = f"http://{args.host}:{args.port}"
    print(
        f"serving {', '.join(chains)} from {args.file} on {url} "
        f"({args.workers} worker{'s' if args.workers > 1 else ''}; docs at {url}/docs)",
        flush=True,
    )
    try:
        _run(args, grace, keepalive)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run(args: argparse.Namespace, grace: float, keepalive: float) -> None:
    """uvicorn.run's two cases (one process, or a supervisor of N workers), always on a
    socket bound here, so every worker serves it through our accepting listener (loop.py)."""
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=_log_config(args.log_level, not args.no_access_log),
        access_log=False,
        http=PROTOCOL,
        timeout_keep_alive=keepalive,  # type: ignore[arg-type]  # a float works
        lifespan="on",
        backlog=BACKLOG,
        loop=LOOP_FACTORY,
        timeout_graceful_shutdown=int(grace) + BACKSTOP,
    )
    sock = config.bind_socket()
    if args.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:  # each worker makes its own Server from the config
        Multiprocess(config, sockets=[sock]).run()
