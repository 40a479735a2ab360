"""`python -m n3_notebook.log` and the option parsing the notebook's %llm log shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from n3_notebook.log.cli import (
    HelpRequested,
    UsageError,
    dashboard_parser,
    log_parser,
    main,
    parse,
    run_log,
)

from .conftest import record, write


def test_options_parse_like_the_magic_says() -> None:
    options = parse(log_parser(), ["-n", "5", "--model", "gpt-4o", "--search", "two words"])
    assert (options.number, options.model, options.search) == (5, "gpt-4o", "two words")
    assert parse(dashboard_parser(), []).since == "1h"
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        parse(log_parser(), ["--bogus"])
    with pytest.raises(UsageError, match="invalid int value"):
        parse(log_parser(), ["-n", "many"])
    with pytest.raises(HelpRequested, match="--search"):
        parse(log_parser(), ["--help"])


def test_log_and_full_text(log_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        record(prompt="first question", answer="a long answer " * 20),
        record(
            prompt="second question",
            outcome="error",
            error_type="ServerError",
            error_message="upstream broke",
        ),
    )
    assert main(["-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "second question" in out and "first question" not in out
    assert main(["--full", "--search", "first"]) == 0
    out = capsys.readouterr().out
    assert "[user]\nfirst question" in out and out.count("a long answer") == 20
    assert main(["--outcome", "error", "--full"]) == 0
    assert "[error] ServerError: upstream broke" in capsys.readouterr().out
    assert len(run_log(parse(log_parser(), ["--all"]))) == 2


def test_dashboard_and_errors(log_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(record(duration=1.0, output_tokens=10))
    assert main(["dashboard", "--since", "10m"]) == 0
    assert "openai:gpt-4o-mini" in capsys.readouterr().out
    assert main(["dashboard", "--since", "yesterday"]) == 2
    assert "cannot read the time window" in capsys.readouterr().err
    assert main(["--model", "nothing-like-this"]) == 0
    assert "no calls logged that match" in capsys.readouterr().out


def test_module_entry_point(tmp_path: Path) -> None:
    env = {**os.environ, "N3_LOG_DB": str(tmp_path / "none.db")}
    out = subprocess.run(
        [sys.executable, "-m", "n3_notebook.log"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0 and "no calls logged" in out.stdout
    assert not (tmp_path / "none.db").exists()  # reading never creates the file
