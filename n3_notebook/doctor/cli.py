"""The `doctor` command line: run the checks, print the table, exit 1 when a provider
with a key fails."""

from __future__ import annotations

import argparse
import asyncio

from .run import DEFAULT_PROVIDERS, DEFAULT_TIMEOUT, run_doctor

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m n3_notebook doctor",
        description=(
            "Check each provider from this machine: key, proxy, DNS, TCP, TLS, an "
            "authenticated models call, the default model and the server's clock."
        ),
    )
    parser.add_argument(
        "providers",
        nargs="*",
        metavar="PROVIDER",
        help=f"providers to check (default: {' '.join(DEFAULT_PROVIDERS)})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds each provider gets in all (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--save", metavar="FILE", help="also write the report (.json, .html or text)"
    )
    parser.add_argument("--cafile", help="CA bundle (PEM) for the TLS check")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.timeout <= 0:
        _parser().error("--timeout must be a positive number of seconds")
    report = asyncio.run(
        run_doctor(args.providers or None, timeout=args.timeout, verify=args.cafile)
    )
    print(report.to_json() if args.json else report.to_text())
    if args.save:
        report.save(args.save)
    return report.exit_code
