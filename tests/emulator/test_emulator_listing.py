"""The emulator's models endpoints page as the real APIs do, and honour X-N3-Fault."""

from __future__ import annotations

from n3_notebook.emulator import EMULATOR_MODELS

ANTHROPIC = {"x-api-key": "k-123456", "anthropic-version": "2023-06-01"}
GEMINI = {"x-goog-api-key": "k-123456"}
BEARER = {"authorization": "Bearer k-123456"}


async def test_anthropic_pages_with_after_and_before_id(client):
    names = EMULATOR_MODELS["anthropic"]
    first = (await client.get("/v1/models?limit=2", headers=ANTHROPIC)).json()
    assert [m["id"] for m in first["data"]] == names[:2]
    assert first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (names[0], names[1])
    url = f"/v1/models?limit=2&after_id={first['last_id']}"
    second = (await client.get(url, headers=ANTHROPIC)).json()
    assert [m["id"] for m in second["data"]] == names[2:4]
    url = f"/v1/models?limit=2&before_id={second['first_id']}"
    back = (await client.get(url, headers=ANTHROPIC)).json()
    assert [m["id"] for m in back["data"]] == names[:2] and back["has_more"] is False
    whole = (await client.get("/v1/models?limit=1000", headers=ANTHROPIC)).json()
    assert whole["has_more"] is False and len(whole["data"]) == len(names)
    bad = await client.get("/v1/models?limit=0", headers=ANTHROPIC)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


async def test_gemini_pages_with_page_tokens(client):
    seen: list[str] = []
    token = None
    for _ in range(10):
        url = "/v1beta/models?pageSize=4" + (f"&pageToken={token}" if token else "")
        body = (await client.get(url, headers=GEMINI)).json()
        seen += [m["name"] for m in body["models"]]
        assert all("generateContent" in m["supportedGenerationMethods"] for m in body["models"])
        token = body.get("nextPageToken")
        if not token:
            break
    assert seen == [f"models/{n}" for n in EMULATOR_MODELS["gemini"]]
    bad = await client.get("/v1beta/models?pageToken=%%%", headers=GEMINI)
    assert bad.status_code == 400


async def test_cohere_lists_chat_models_with_next_page_token(client):
    url = "/v1/models?endpoint=chat&page_size=3"
    body = (await client.get(url, headers=BEARER)).json()
    assert len(body["models"]) == 3 and body["next_page_token"]
    entry = body["models"][0]
    assert {"name", "endpoints", "context_length", "features", "default_endpoints"} <= set(entry)
    url += f"&page_token={body['next_page_token']}"
    rest = (await client.get(url, headers=BEARER)).json()
    names = [m["name"] for m in body["models"] + rest["models"]]
    assert names == EMULATOR_MODELS["cohere"] and "next_page_token" not in rest
    only = (await client.get("/v1/models?endpoint=chat&default_only=true", headers=BEARER)).json()
    assert [m["name"] for m in only["models"]] == ["command-a-03-2025"]
    # without Cohere's parameters the shared path is still OpenAI's listing
    openai = (await client.get("/v1/models", headers=BEARER)).json()
    assert openai["object"] == "list"


async def test_listing_faults_and_keys(client):
    fault = {"X-N3-Fault": "invalid_key"}
    r = await client.get("/v1/models", headers={**BEARER, **fault})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = await client.get("/v1/models", headers={**ANTHROPIC, **fault})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = await client.get("/v1beta/models", headers={**GEMINI, **fault})
    assert r.status_code == 400 and "API key not valid" in r.json()["error"]["message"]
    r = await client.get("/v1/models?endpoint=chat", headers={**BEARER, **fault})
    assert r.status_code == 401
    r = await client.get("/v1/models", headers={**BEARER, "X-N3-Fault": "rate_limit:1"})
    assert r.status_code == 429
    r = await client.get("/v1/models", headers={**BEARER, "X-N3-Fault": "rate_limit:1"})
    assert r.status_code == 200  # the first N fail, then it answers
    r = await client.get("/v1/models", headers={**BEARER, "X-N3-Fault": "bogus"})
    assert r.status_code == 400
