"""gunicorn settings for n3_notebook's service (see deploy/README.md). Every value can be
overridden by the usual GUNICORN_CMD_ARGS or command-line flags."""

import os
import shutil

bind = os.environ.get("N3_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("N3_WORKERS", "2"))
# The maintained UvicornWorker (uvicorn.workers.UvicornWorker is the deprecated alias).
worker_class = "n3_notebook.serve.worker.Worker"  # uvicorn-worker's, accepting in batches
# The app stops running streams cleanly after N3_SERVE_GRACE_PERIOD (default 25 s);
# gunicorn kills a worker that is still busy after graceful_timeout, so keep it longer.
graceful_timeout = int(float(os.environ.get("N3_SERVE_GRACE_PERIOD", "25"))) + 5
timeout = 60  # worker heartbeat; async workers answer it between requests
keepalive = 5
backlog = 4096
accesslog = "-"  # request lines only: no headers, so no tokens or keys
errorlog = "-"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def on_starting(server):
    """Start with an empty Prometheus multiprocess directory."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges (in flight, open streams) leave the sum."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
