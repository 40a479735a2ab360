"""``python -m n3_notebook.emulator --port 8765``: serve all five providers until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .runner import run_emulator


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {raw!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m n3_notebook.emulator",
        description="Serve the n3 provider emulator (OpenAI, Anthropic, Gemini, Cohere, "
        "Ollama wire formats) until interrupted.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--token-delay",
        type=_seconds,
        default=None,
        metavar="S",
        help="seconds between tokens for every model",
    )
    parser.add_argument(
        "--first-token-delay",
        type=_seconds,
        default=None,
        metavar="S",
        help="seconds before the first token for every model",
    )
    parser.add_argument(
        "--requests-per-minute",
        type=float,
        default=None,
        metavar="N",
        help="answer 429 past N requests a minute per provider and model",
    )
    parser.add_argument(
        "--tokens-per-minute",
        type=float,
        default=None,
        metavar="N",
        help="answer 429 past N tokens a minute per provider and model",
    )
    parser.add_argument(
        "--burst-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="a budget holds S seconds' worth at most (default: a whole minute)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emulator = run_emulator(
        token_delay=args.token_delay,
        first_token_delay=args.first_token_delay,
        port=args.port,
        host=args.host,
    )
    emulator.set_rate_limits(
        args.requests_per_minute, args.tokens_per_minute, burst_seconds=args.burst_seconds
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        for provider, url in emulator.base_urls.items():
            print(f"{provider} {url}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop(cut=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
