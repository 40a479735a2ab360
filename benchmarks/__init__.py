"""Benchmarks for n3_notebook: `python -m benchmarks [NAME ...] [--quick]`.

Each benchmark is a module in this package listed in `benchmarks.__main__.BENCHMARKS`; it
exposes TITLE (str) and run(quick: bool) -> dict (see benchmarks._util.BenchResult). Results
are merged into benchmarks/results/latest.json and rendered to latest.md. Benchmarks only
ever talk to loopback."""
