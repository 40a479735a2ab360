"""amap with tools=, schema= and run_tools=: they reach every row's request, parsed fields
become DataFrame columns, and the cache keys on the JSON of tools and schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from n3_notebook import Message, OpenAIProvider, StructuredOutputError, amap
from n3_notebook.core.cache import CACHE_DIR_ENV
from n3_notebook.emulator import Emulator, run_emulator

KEY = "sk-test-KEY-0123456789"


class Person(BaseModel):
    name: str
    age: int


PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _isolated(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    emu.reset()
    emu.set_pacing(0, 0)


def openai(emu: Emulator) -> OpenAIProvider:
    return OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY)


async def test_schema_parses_every_row_into_columns(emu: Emulator) -> None:
    rows = [{"who": f"person {i}"} for i in range(6)]
    result = await amap("Describe {who}", rows, model=openai(emu), schema=Person)
    assert not result.errors and len(result) == 6
    assert all(r is not None and isinstance(r.parsed, Person) for r in result)
    assert all(r.body["response_format"]["type"] == "json_schema" for r in emu.records if r.body)
    pd = pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert {"who", "answer", "name", "age", "error"} <= set(frame.columns)
    first = result[0]
    assert first is not None and isinstance(first.parsed, Person)
    assert frame.loc[0, "name"] == first.parsed.name and frame.loc[0, "age"] == first.parsed.age


async def test_a_json_schema_dict_gives_columns_too(emu: Emulator) -> None:
    result = await amap("{row}", ["a", "b"], model=openai(emu), schema=PERSON_SCHEMA)
    assert not result.errors
    assert all(r is not None and isinstance(r.parsed, dict) for r in result)
    frame = pytest.importorskip("pandas") and result.to_pandas()
    assert list(frame["name"]) == [r.parsed["name"] for r in result if r is not None]


async def test_a_field_named_like_an_input_column_is_prefixed(emu: Emulator) -> None:
    result = await amap("{name}", [{"name": "x"}], model=openai(emu), schema=Person)
    pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert frame.loc[0, "name"] == "x"
    assert result[0] is not None and frame.loc[0, "parsed.name"] == result[0].parsed.name


async def test_an_answer_that_does_not_parse_keeps_its_text_and_records_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        text = "not json at all" if "bad" in prompt else '{"name": "Ada", "age": 36}'
        events = [
            {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": text}}]},
            {
                "id": "c",
                "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            },
        ]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = OpenAIProvider("gpt-4o-mini", api_key=KEY, http_client=client)
    result = await amap("{row}", ["good", "bad", "good"], model=provider, schema=Person)
    await client.aclose()
    assert set(result.errors) == {1}
    error = result.errors[1]
    assert isinstance(error, StructuredOutputError) and error.raw_text == "not json at all"
    kept = result[1]
    assert kept is not None and kept.content == "not json at all" and kept.parsed is None
    assert result[0] is not None and result[0].parsed == Person(name="Ada", age=36)
    pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert frame.loc[1, "answer"] == "not json at all"
    assert frame["name"].isna().tolist() == [False, True, False]
    assert "StructuredOutputError" in frame.loc[1, "error"]


async def test_tools_reach_every_row_and_their_calls_are_the_answer(emu: Emulator) -> None:
    result = await amap("Weather in {row}", ["Paris", "Oslo"], model=openai(emu), tools=[weather])
    assert not result.errors
    for response in result:
        assert response is not None and response.finish_reason == "tool_calls"
        assert [c.name for c in response.tool_calls] == ["weather"]
    sent = [r.body for r in emu.records if r.body]
    assert all(b["tools"][0]["function"]["name"] == "weather" for b in sent)


async def test_run_tools_runs_them_per_row_and_returns_the_final_answer(emu: Emulator) -> None:
    calls: list[str] = []

    def lookup(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    result = await amap(
        "Weather in {row}", ["Paris", "Oslo"], model=openai(emu), tools=[lookup], run_tools=True
    )
    assert not result.errors and len(calls) == 2
    for response in result:
        assert response is not None and not response.tool_calls
        assert response.finish_reason == "stop" and "sunny in" in response.content
        assert [m.role for m in response.messages][:2] == ["user", "assistant"]


async def test_the_cache_keys_on_the_schemas_json_not_the_class_object(emu: Emulator) -> None:
    first = await amap("{row}", ["a", "b"], model=openai(emu), schema=Person, cache=True)
    sent = len(emu.records)

    class Twin(BaseModel):  # another class object with the same JSON schema and name
        name: str
        age: int

    Twin.__name__ = "Person"
    again = await amap("{row}", ["a", "b"], model=openai(emu), schema=Twin, cache=True)
    assert again.cached == 2 and len(emu.records) == sent
    assert all(r is not None and isinstance(r.parsed, Twin) for r in again)
    assert [r.parsed.model_dump() for r in again if r] == [
        r.parsed.model_dump() for r in first if r
    ]


def test_the_cache_key_of_tools_is_their_json_schema(emu: Emulator) -> None:
    def make() -> object:
        def weather(city: str) -> str:
            """The weather in a city."""
            return city

        return weather

    def forecast(city: str, days: int) -> str:
        """The weather in a city."""
        return city * days

    one, two = make(), make()
    assert one is not two
    provider = openai(emu)
    msgs = [Message("user", "hi")]
    key_one = provider._cache_key(msgs, None, provider._params({"tools": [one]}))
    assert key_one == provider._cache_key(msgs, None, provider._params({"tools": [two]}))
    assert key_one != provider._cache_key(msgs, None, provider._params({"tools": [forecast]}))


async def test_answers_with_tool_calls_and_run_tools_rows_stay_uncached(emu: Emulator) -> None:
    for _ in range(2):
        calls = await amap("{row}", ["a"], model=openai(emu), tools=[weather], cache=True)
        assert calls.cached == 0

    def again(city: str) -> str:
        """The weather in a city."""
        return city

    for _ in range(2):
        ran = await amap(
            "{row}", ["a"], model=openai(emu), tools=[again], run_tools=True, cache=True
        )
        assert ran.cached == 0 and not ran.errors
    assert len(emu.records) == 2 + 2 * 2
