"""Run, stream and generate endpoints against the emulator over real sockets."""

from __future__ import annotations

import httpx
import pytest

from n3_notebook.chain import Chain
from n3_notebook.emulator import expected_answer

from .conftest import SECRET_KEY, parse_sse, two_step

pytestmark = pytest.mark.timeout(30)


def expected_two_step(topic: str, style: str = "plain") -> dict[str, str]:
    p1 = f"List three questions about {topic}, {style}."
    outline = expected_answer(
        "openai", "gpt-4o-mini", [{"role": "user", "content": p1}], max_tokens=12
    ).text
    p2 = f"Answer each: {outline}"
    answers = expected_answer(
        "openai",
        "gpt-4o-mini",
        [{"role": "user", "content": p2}],
        system="Be brief.",
        max_tokens=15,
    ).text
    return {"outline": outline, "answers": answers}


def test_run_returns_outputs_timings_usage_and_cost(serve):
    server = serve()
    r = httpx.post(f"{server.url}/chains/brief/run", json={"topic": "solid-state batteries"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outputs"] == expected_two_step("solid-state batteries")
    assert body["inputs"] == {"topic": "solid-state batteries", "style": "plain"}
    assert set(body["steps"]) == {"outline", "answers"}
    for step in body["steps"].values():
        assert step["state"] == "done" and step["duration"] > 0
        assert step["output_tokens"] > 0 and step["model"] == "openai:gpt-4o-mini"
    assert body["usage"]["output_tokens"] == sum(s["output_tokens"] for s in body["steps"].values())
    assert body["cost_usd"] is not None and body["cost_usd"] > 0
    assert body["duration"] > 0


def test_stream_event_order_ids_and_texts(serve):
    server = serve()
    with httpx.stream(
        "POST", f"{server.url}/chains/brief/stream", json={"topic": "tides", "style": "short"}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read().decode())
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    kinds = [(e["event"], e["data"].get("step")) for e in events]
    assert kinds[0] == ("step_started", "outline")
    assert kinds[-2][0] == "chain_done" and kinds[-1][0] == "done"
    order = [k for k in kinds if k[0] != "token"]
    assert order == [
        ("step_started", "outline"),
        ("step_done", "outline"),
        ("step_started", "answers"),
        ("step_done", "answers"),
        ("chain_done", None),
        ("done", None),
    ]
    # tokens of a step come between its step_started and step_done
    expected = expected_two_step("tides", "short")
    for step in ("outline", "answers"):
        start = kinds.index(("step_started", step))
        end = kinds.index(("step_done", step))
        texts = [
            e["data"]["text"]
            for e in events[start + 1 : end]
            if e["event"] == "token" and e["data"]["step"] == step
        ]
        assert "".join(texts) == expected[step]
        done = events[end]["data"]
        assert done["output_tokens"] == len(texts) and done["input_tokens"] > 0
        assert done["finish_reason"] == "length"
    assert events[-2]["data"]["outputs"] == expected
    final = events[-1]["data"]
    assert final["ok"] is True and final["usage"]["output_tokens"] == 12 + 15
    assert final["cost_usd"] > 0


def test_generate_and_generate_stream(serve):
    server = serve()
    exp = expected_answer(
        "openai",
        "gpt-4o-mini",
        [{"role": "user", "content": "Why is the sky blue?"}],
        system="Be kind.",
        max_tokens=9,
    )
    r = httpx.post(
        f"{server.url}/v1/generate",
        json={
            "prompt": "Why is the sky blue?",
            "model": "openai:gpt-4o-mini",
            "system": "Be kind.",
            "max_tokens": 9,
            "temperature": 0.3,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == exp.text and body["finish_reason"] == "length"
    assert body["usage"]["output_tokens"] == 9 and body["provider"] == "openai"
    with httpx.stream(
        "POST",
        f"{server.url}/v1/generate/stream",
        json={
            "prompt": "Why is the sky blue?",
            "model": "openai:gpt-4o-mini",
            "system": "Be kind.",
            "max_tokens": 9,
        },
    ) as r:
        assert r.status_code == 200
        events = parse_sse(r.read().decode())
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert {e["event"] for e in events[:-1]} == {"token"}
    assert "".join(e["data"]["text"] for e in events[:-1]) == exp.text
    done = events[-1]
    assert done["event"] == "done" and done["data"]["ok"] is True
    assert done["data"]["usage"]["output_tokens"] == 9
    assert done["data"]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({}, "topic", "Field required"),
        ({"topic": "x", "style": 3}, "style", "valid string"),
        ({"topic": "x", "stlye": "y"}, "stlye", "unknown field"),
        ({"topic": None}, "topic", ""),
        ([1, 2], "body", "dictionary"),
    ],
)
def test_bad_inputs_are_422_naming_the_field(serve, body, field, fragment):
    server = serve()
    for action in ("run", "stream"):
        r = httpx.post(f"{server.url}/chains/brief/{action}", json=body)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_request"
        assert err["message"].startswith(f"{field}") or f"{field}:" in err["message"]
        assert fragment in err["message"]
        assert any(e["field"].startswith(field) for e in err["errors"])


def test_invalid_json_and_missing_body_are_422(serve):
    server = serve()
    r = httpx.post(
        f"{server.url}/chains/brief/run",
        content=b'{"topic": ',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/chains/brief/run")
    assert r.status_code == 422 and "Field required" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/generate", json={"prompt": "", "model": "x", "extra": 1})
    assert r.status_code == 422
    msg = r.json()["error"]["message"]
    assert "prompt" in msg and "extra: unknown field" in msg


def test_chain_without_required_inputs_accepts_an_empty_body(serve):
    chain = Chain.parse(
        "input n = 2\nstep a: openai:gpt-4o-mini, max_tokens=3\n    Count to {n}\n", "count"
    )
    server = serve([chain])
    r = httpx.post(f"{server.url}/chains/count/run")
    assert r.status_code == 200 and r.json()["inputs"] == {"n": 2}
    r = httpx.post(f"{server.url}/chains/count/run", json={"n": "three"})
    assert r.status_code == 422 and "valid integer" in r.json()["error"]["message"]


def test_unknown_chain_is_404_listing_the_known_ones(serve):
    other = Chain.parse("step a: openai:gpt-4o-mini\n    hi\n", "other")
    server = serve([two_step(), other])
    for action in ("run", "stream"):
        r = httpx.post(f"{server.url}/chains/nope/{action}", json={})
        assert r.status_code == 404
        err = r.json()["error"]
        assert err["type"] == "unknown_chain" and err["chains"] == ["brief", "other"]
        assert "'nope'" in err["message"] and "brief, other" in err["message"]
    r = httpx.get(f"{server.url}/nowhere")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_chains_listing_healthz_and_docs(serve):
    server = serve()
    listing = httpx.get(f"{server.url}/chains").json()["chains"]
    assert listing == [
        {
            "name": "brief",
            "inputs": [
                {"name": "topic", "required": True},
                {"name": "style", "required": False, "default": "plain"},
            ],
            "steps": [
                {"name": "outline", "model": "openai:gpt-4o-mini", "depends_on": []},
                {"name": "answers", "model": "openai:gpt-4o-mini", "depends_on": ["outline"]},
            ],
            "run": "/chains/brief/run",
            "stream": "/chains/brief/stream",
        }
    ]
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "chains": 1}
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {
        "/chains/brief/run",
        "/chains/brief/stream",
        "/v1/generate",
        "/v1/generate/stream",
        "/chains",
        "/healthz",
        "/metrics",
    } <= set(spec["paths"])
    schema = spec["components"]["schemas"]["BriefInputs"]
    assert schema["required"] == ["topic"] and schema["properties"]["style"]["default"] == "plain"


def test_provider_failure_is_502_with_the_providers_message(serve):
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini~status_500:9, max_tokens=3\n    hi\n"
        "step b: openai:gpt-4o-mini, max_tokens=3\n    again {a}\n"
        "step c: openai:gpt-4o-mini, max_tokens=3\n    other\n",
        "flaky",
    )
    server = serve([chain])
    r = httpx.post(f"{server.url}/chains/flaky/run", json={})
    assert r.status_code == 502, r.text
    body = r.json()
    err = body["error"]
    assert err["type"] == "upstream_error" and err["step"] == "a"
    assert err["upstream_status"] == 500 and err["provider"] == "openai"
    assert "had an error while processing your request" in err["message"]
    assert body["result"]["steps"]["b"]["state"] == "skipped"
    assert body["result"]["outputs"]["c"]  # the independent step still finished
    assert SECRET_KEY not in r.text and "Traceback" not in r.text
    with httpx.stream("POST", f"{server.url}/chains/flaky/stream", json={}) as r:
        events = parse_sse(r.read().decode())
    failed = [e["data"] for e in events if e["event"] == "step_failed"]
    assert failed and failed[0]["step"] == "a" and failed[0]["error_type"] == "upstream_error"
    assert failed[0]["upstream_status"] == 500
    assert [e["data"]["step"] for e in events if e["event"] == "step_skipped"] == ["b"]
    assert events[-1]["event"] == "done" and events[-1]["data"]["ok"] is False


def test_generate_errors(serve):
    server = serve(models=None)
    r = httpx.post(
        f"{server.url}/v1/generate",
        json={"prompt": "x", "model": "openai:gpt-4o-mini~status_500:9"},
    )
    assert r.status_code == 502 and r.json()["error"]["upstream_status"] == 500
    r = httpx.post(
        f"{server.url}/v1/generate/stream",
        json={"prompt": "x", "model": "openai:gpt-4o-mini~invalid_key"},
    )
    assert r.status_code == 502 and r.json()["error"]["upstream_status"] == 401
    assert SECRET_KEY not in r.text
    r = httpx.post(f"{server.url}/v1/generate", json={"prompt": "x", "model": "nosuch:model-x"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "model_unavailable"
    # an error after the first token: the stream ends with `error`, then `done`
    with httpx.stream(
        "POST",
        f"{server.url}/v1/generate/stream",
        json={"prompt": "x", "model": "openai:gpt-4o-mini~midstream_error:4"},
    ) as r:
        assert r.status_code == 200
        events = parse_sse(r.read().decode())
    assert [e["event"] for e in events] == ["token"] * 4 + ["error", "done"]
    assert events[-2]["data"]["error"]["type"] == "upstream_error"
    assert events[-1]["data"] == {"ok": False, "reason": "upstream_error", "text_chunks": 4}


def test_model_allow_list(serve):
    server = serve(models=["openai:gpt-4o-mini"])
    ok = httpx.post(
        f"{server.url}/v1/generate",
        json={"prompt": "x", "model": "openai:gpt-4o-mini", "max_tokens": 2},
    )
    assert ok.status_code == 200
    r = httpx.post(f"{server.url}/v1/generate", json={"prompt": "x", "model": "openai:gpt-4o"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "model_not_allowed"


def test_a_rate_limited_step_keeps_its_upstream_details(serve):
    """The step's own exception decides the answer: 503 with Retry-After, and the
    provider, status and request id the provider gave, on run and on stream alike."""
    chain = Chain.parse(
        "step a: anthropic:claude-3-5-haiku-latest~rate_limit:99, max_tokens=3\n    hi\n",
        "limited",
    )
    server = serve([chain])
    r = httpx.post(f"{server.url}/chains/limited/run", json={})
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    err = r.json()["error"]
    assert err["type"] == "upstream_overloaded" and err["step"] == "a"
    assert err["provider"] == "anthropic" and err["upstream_status"] == 429
    assert err["request_id"] and err["request_id"] in err["message"]
    assert err["message"].startswith("step 'a' failed: [anthropic] HTTP 429:")
    with httpx.stream("POST", f"{server.url}/chains/limited/stream", json={}) as s:
        events = parse_sse(s.read().decode())
    failed = [e["data"] for e in events if e["event"] == "step_failed"]
    assert len(failed) == 1 and failed[0]["error_type"] == "upstream_overloaded"
    assert failed[0]["upstream_status"] == 429 and failed[0]["provider"] == "anthropic"
    assert failed[0]["request_id"] and failed[0]["request_id"] != err["request_id"]
