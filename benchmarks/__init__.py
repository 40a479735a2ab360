"""Benchmarks for n3_notebook: `python -m benchmarks [NAME ...] [--quick]`.

Each benchmark is a module in this package listed in `benchmarks.__main__.BENCHMARKS`; it
exposes TITLE (str) and run(quick: bool) -> dict (see benchmarks._util.BenchResult). Results
are merged into benchmarks/results/latest.json and rendered to latest.md. Benchmarks only
ever talk to loopback."""

import os
import tempfile

# The calls benchmarks make are logged like any others (the call log stays on, as for a
# user), but to a scratch file, never to the user's own log (kids inherit it).
os.environ.setdefault("N3_LOG_DB", os.path.join(tempfile.gettempdir(), "n3-benchmarks-log.db"))
