"""Command lines for the call log, shared by `python -m n3_notebook.log` and the notebook's
`%llm log` / `%llm dashboard`: the options are parsed here (argparse), so both read alike.

    python -m n3_notebook.log [-n N] [--model M] [--search TEXT] [--since 1h] [--full]
    python -m n3_notebook.log dashboard [--since 1h] [--plot FILE.png]"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .dashboard import DEFAULT_BUCKETS, Dashboard, dashboard
from .query import Calls, query

__all__ = [
    "UsageError",
    "dashboard_parser",
    "log_parser",
    "main",
    "parse",
    "run_dashboard",
    "run_log",
]


class UsageError(ValueError):
    """Options that do not parse: the message says what was wrong and shows the usage."""


class HelpRequested(UsageError):
    """-h or --help was given: the message is the help text."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def log_parser(prog: str = "python -m n3_notebook.log") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="The last calls from the call log, oldest first.")
    p.add_argument("-n", "--number", type=int, default=20, help="how many calls (default 20)")
    p.add_argument("--all", action="store_true", help="every call that matches")
    p.add_argument("--model", "-m", help="model, provider:model, or a glob such as gpt-4*")
    p.add_argument("--provider", help="only this provider")
    p.add_argument("--search", "-q", help="text in the prompt, answer or error")
    p.add_argument("--since", help="a window such as 90s, 15m, 1h, 2d")
    p.add_argument("--until", help="the window's end, the same way (default now)")
    p.add_argument("--outcome", choices=("ok", "error", "timeout", "cancelled"))
    p.add_argument("--notebook", help="only calls made from this notebook")
    p.add_argument("--full", action="store_true", help="every message and the whole answer")
    p.add_argument("--db", help="another log file (default: the log's own)")
    return p


def dashboard_parser(prog: str = "python -m n3_notebook.log dashboard") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Per provider and model aggregates of the call log.")
    p.add_argument("--since", default="1h", help="the window's start: 15m, 1h, 2d (default 1h)")
    p.add_argument("--until", help="the window's end (default now)")
    p.add_argument("--buckets", type=int, default=DEFAULT_BUCKETS, help="slices for over-time")
    p.add_argument("--db", help="another log file (default: the log's own)")
    p.add_argument("--plot", metavar="FILE", help="also save the charts here (needs matplotlib)")
    return p


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """The options, or UsageError / HelpRequested (never SystemExit, so a notebook cell
    shows the message)."""
    if any(a in ("-h", "--help") for a in argv):
        raise HelpRequested(parser.format_help())
    return parser.parse_args(list(argv))


def run_log(options: argparse.Namespace) -> Calls:
    return query(
        None if options.all else options.number,
        model=options.model,
        provider=options.provider,
        search=options.search,
        since=options.since,
        until=options.until,
        outcome=options.outcome,
        notebook=options.notebook,
        path=options.db,
    )


def run_dashboard(options: argparse.Namespace) -> Dashboard:
    return dashboard(options.since, until=options.until, buckets=options.buckets, path=options.db)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["dashboard"]:
            options = parse(dashboard_parser(), args[1:])
            board = run_dashboard(options)
            print(board.table())
            if options.plot:
                board.plot().savefig(options.plot)
                print(f"charts saved to {options.plot}")
            return 0
        options = parse(log_parser(), args)
        calls = run_log(options)
    except HelpRequested as exc:
        print(exc)
        return 0
    except (UsageError, ValueError, TypeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not calls:
        print("no calls logged" + (" that match" if args else ""))
    else:
        print(calls.details() if options.full else calls.table())
    return 0
