"""Authentication on every route, and secrets never reaching the records."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from n3_notebook.emulator import Emulator, run_emulator

from .emu_wire import anthropic_req, cohere_req, cohere_v1_req, gemini_req, ollama_req, openai_req

GOOD = "sk-good-key-000111222333"
BAD = "sk-bad-key-999888777666"


@pytest.fixture(scope="module")
def strict() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0, api_keys=GOOD) as emulator:
        yield emulator


@pytest.fixture
def http(strict: Emulator) -> Iterator[httpx.Client]:
    strict.reset()
    with httpx.Client(base_url=f"http://127.0.0.1:{strict.port}", timeout=10) as c:
        yield c


def _send(http, req, key: str | None, where: str):
    path, body, headers = req
    headers = {
        k: v
        for k, v in headers.items()
        if k not in ("authorization", "x-api-key", "x-goog-api-key")
    }
    if key is not None:
        if where == "bearer":
            headers["authorization"] = f"Bearer {key}"
        elif where == "x-api-key":
            headers["x-api-key"] = key
        elif where == "goog":
            headers["x-goog-api-key"] = key
        elif where == "query":
            path += ("&" if "?" in path else "?") + f"key={key}"
    return http.post(path, json=body, headers=headers)


def test_openai_auth(http):
    r = _send(http, openai_req(), None, "bearer")
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["message"].startswith("You didn't provide an API key")
    assert error["type"] == "invalid_request_error" and error["code"] is None
    assert error["param"] is None
    r = _send(http, openai_req(), BAD, "bearer")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert BAD not in r.text
    assert _send(http, openai_req(), GOOD, "bearer").status_code == 200


def test_anthropic_auth_and_required_fields(http):
    r = _send(http, anthropic_req(), None, "x-api-key")
    assert r.status_code == 401
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == r.headers["request-id"]
    r = _send(http, anthropic_req(), BAD, "x-api-key")
    assert r.status_code == 401
    assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    path, body, headers = anthropic_req()
    r = http.post(path, json=body, headers={"x-api-key": GOOD})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in r.json()["error"]["message"]
    del body["max_tokens"]
    r = http.post(path, json=body, headers={**headers, "x-api-key": GOOD})
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    assert _send(http, anthropic_req(), GOOD, "x-api-key").status_code == 200


def test_gemini_auth(http):
    r = _send(http, gemini_req(), None, "goog")
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    for where in ("goog", "query"):
        r = _send(http, gemini_req(), BAD, where)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == 400
        assert r.json()["error"]["message"] == "API key not valid. Please pass a valid API key."
        assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert _send(http, gemini_req(), GOOD, where).status_code == 200


@pytest.mark.parametrize("req", [cohere_req(), cohere_v1_req()])
def test_cohere_auth(http, req):
    r = _send(http, req, None, "bearer")
    assert r.status_code == 401 and r.json() == {"message": "no api key supplied"}
    r = _send(http, req, BAD, "bearer")
    assert r.status_code == 401 and r.json() == {"message": "invalid api token"}
    assert _send(http, req, GOOD, "bearer").status_code == 200


def test_ollama_needs_no_key(http):
    assert _send(http, ollama_req(), None, "bearer").status_code == 200


def test_listing_routes_check_auth(http):
    assert http.get("/v1/models").status_code == 401
    assert http.get("/v1beta/models").status_code == 403
    assert http.get("/v1/models", headers={"authorization": f"Bearer {GOOD}"}).status_code == 200


def test_per_provider_keys():
    keys = {"openai": "sk-openai-123456", "anthropic": ["a-1234567", "a-7654321"]}
    with (
        run_emulator(token_delay=0, first_token_delay=0, api_keys=keys) as emu,
        httpx.Client(base_url=f"http://127.0.0.1:{emu.port}") as http,
    ):
        assert _send(http, openai_req(), "sk-openai-123456", "bearer").status_code == 200
        assert _send(http, openai_req(), "a-1234567", "bearer").status_code == 401
        assert _send(http, anthropic_req(), "a-7654321", "x-api-key").status_code == 200
        assert _send(http, cohere_req(), "anything-goes", "bearer").status_code == 200


def test_records_never_hold_a_secret(http, strict):
    for where, req in [
        ("bearer", openai_req()),
        ("x-api-key", anthropic_req()),
        ("goog", gemini_req()),
        ("query", gemini_req()),
        ("bearer", cohere_req()),
    ]:
        _send(http, req, GOOD, where)
        _send(http, req, BAD, where)
    path, body, _headers = openai_req()
    http.post(
        path,
        json={**body, "user": f"echo {GOOD}"},
        headers={"authorization": f"Bearer {GOOD}", "api-key": GOOD},
    )
    records = strict.records
    assert len(records) == 11
    dump = repr(records)
    assert GOOD not in dump and BAD not in dump
    assert records[0].headers["authorization"] == "***"
    assert records[1].headers["authorization"] == "***"
    assert records[2].headers["x-api-key"] == "***"
    assert records[6].query["key"] == "***"
    assert records[-1].body["user"] == "echo ***"
    assert [r.status for r in records[:2]] == [200, 401]
