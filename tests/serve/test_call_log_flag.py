"""The service's call log: off unless `serve --call-log PATH`, and then numbers only unless
`--call-log-text` (a server's prompts are its clients'). Checked on the real command, with
one worker (the server process itself) and two (spawned workers read N3_LOG*)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import platformdirs
import pytest

pytestmark = pytest.mark.timeout(90)

CHAIN = 'chain hello\ninput who = "world"\nstep a:\n    Say hello to {who}.\n'
OFFLINE = {
    "N3_OFFLINE": "1",
    "N3_EMULATOR_TOKEN_DELAY": "0",
    "N3_EMULATOR_FIRST_TOKEN_DELAY": "0",
}
PROMPT = "the secret-plan prompt"


def _chat(url: str) -> None:
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "emulator:demo", "messages": [{"role": "user", "content": PROMPT}]},
        timeout=20,
    )
    assert r.status_code == 200, r.text


def _rows(db: Path) -> list[tuple[str, str | None, int | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT model, prompt, output_tokens FROM calls").fetchall()


def test_no_call_log_by_default(spawn, tmp_path, monkeypatch):
    home = tmp_path / "home"
    env = {**OFFLINE, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    monkeypatch.setenv("HOME", env["HOME"])
    monkeypatch.setenv("XDG_DATA_HOME", env["XDG_DATA_HOME"])
    default_db = platformdirs.user_data_path("n3_notebook", appauthor=False) / "log.db"
    assert str(default_db).startswith(str(home))
    p = spawn(CHAIN, N3_LOG="1", **env)  # the flag decides, not a leftover environment
    _chat(p.url)
    p.close()
    assert not default_db.exists()
    assert not any(home.rglob("*.db"))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_call_log_keeps_numbers_and_no_text(spawn, tmp_path, workers):
    db = tmp_path / f"calls-{workers}.db"
    p = spawn(CHAIN, "--workers", workers, "--call-log", str(db), **OFFLINE)
    _chat(p.url)
    _chat(p.url)
    p.stop_gracefully()
    rows = _rows(db)
    assert len(rows) == 2
    assert all(model == "demo" and prompt is None and (out or 0) > 0 for model, prompt, out in rows)
    assert PROMPT.encode() not in db.read_bytes()


def test_call_log_text_on_request(spawn, tmp_path):
    db = tmp_path / "calls-text.db"
    p = spawn(CHAIN, "--call-log", str(db), "--call-log-text", **OFFLINE)
    _chat(p.url)
    p.stop_gracefully()
    rows = _rows(db)
    assert len(rows) == 1 and PROMPT in (rows[0][1] or "")
