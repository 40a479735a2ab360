"""`python -m n3_notebook serve FILE ...`: serve chains over HTTP (needs the `serve` extra);
`python -m n3_notebook doctor`: check each provider from this machine."""

from __future__ import annotations

import sys

USAGE = """usage: python -m n3_notebook serve FILE [--host H] [--port P] [--workers N] ...
       python -m n3_notebook doctor [PROVIDER ...] [--timeout S] [--json] [--save FILE]

commands:
  serve   serve the chains of a chain file or notebook as HTTP endpoints
          (python -m n3_notebook serve --help for the options)
  doctor  check each provider from this machine: key, proxy, DNS, TCP, TLS, models call,
          default model, clock (exit status 1 when a provider with a key fails)"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        try:  # an optional extra; each command loads only what it runs (startup time)
            from .serve.cli import main as serve
        except ImportError as exc:  # fastapi or prometheus-client missing
            print(
                f"serving needs the serve extra ({exc.name} is missing): "
                "pip install 'n3_notebook[serve]'",
                file=sys.stderr,
            )
            return 2
        return serve(rest)
    if command == "doctor":
        from .doctor.cli import main as doctor  # lazy startup, as above

        return doctor(rest)
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
