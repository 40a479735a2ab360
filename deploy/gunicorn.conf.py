"""gunicorn settings for n3_notebook's service (see deploy/README.md). Every value can be
overridden by the usual GUNICORN_CMD_ARGS or command-line flags.

The request limits are the service's own (N3_SERVE_* variables, n3_notebook.serve.settings
.Limits), applied by the worker class: body, headers, timeouts, per-token concurrency.
gunicorn's limit_request_* settings only bind its sync workers. Like the CLI, the master
refuses to listen beyond loopback without a token (N3_SERVE_TOKEN, N3_SERVE_TOKEN_FILE)
unless N3_SERVE_INSECURE_NO_AUTH=1."""

import math
import os
import shutil
import sys

from prometheus_client import multiprocess

from n3_notebook.serve.exposure import InsecureBindError, check_exposure
from n3_notebook.serve.settings import Limits
from n3_notebook.serve.tokens import collect_tokens

bind = os.environ.get("N3_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("N3_WORKERS", "2"))
# The maintained UvicornWorker (uvicorn.workers.UvicornWorker is the deprecated alias).
worker_class = "n3_notebook.serve.worker.Worker"  # uvicorn-worker's, accepting in batches
# The app stops running streams cleanly after N3_SERVE_GRACE_PERIOD (default 25 s);
# gunicorn kills a worker that is still busy after graceful_timeout, so keep it longer.
graceful_timeout = int(float(os.environ.get("N3_SERVE_GRACE_PERIOD", "25"))) + 5
timeout = 60  # worker heartbeat; async workers answer it between requests
# idle kept-alive connections close after N3_SERVE_KEEPALIVE_TIMEOUT (default 5 s)
keepalive = max(1, math.ceil(Limits.from_env().keepalive_timeout))  # gunicorn takes whole s
backlog = 4096
accesslog = "-"  # request lines only: no headers, so no tokens or keys
errorlog = "-"
# bandit B108: gunicorn's heartbeat files (its documented advice: a RAM disk), not data
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # nosec B108


def _host(address):
    """The host of a gunicorn bind address: HOST:PORT, [V6]:PORT, unix:PATH, fd://N."""
    if address.startswith(("unix:", "fd://")):
        return address
    host, sep, port = address.rpartition(":")
    return host if sep and port.isdigit() else address


def on_starting(server):
    """Refuse an open public bind; start with an empty Prometheus multiprocess directory."""
    tokens = collect_tokens(
        os.environ.get("N3_SERVE_TOKEN"), None, os.environ.get("N3_SERVE_TOKEN_FILE") or None
    )
    insecure = os.environ.get("N3_SERVE_INSECURE_NO_AUTH", "") not in ("", "0")
    for address in server.cfg.bind:
        try:
            warning = check_exposure(_host(address), bool(tokens), insecure)
        except InsecureBindError as exc:
            print(exc, file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        if warning:
            print(warning, file=sys.stderr, flush=True)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges (in flight, open streams) leave the sum."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
