"""schemathesis against the real server process: every operation of /openapi.json, with
generated valid (positive) and invalid (negative) requests; no answer is a 5xx and every
answer is documented and matches its schema (SSE events included). Bounded: a few
examples per operation and mode (SCHEMATHESIS_EXAMPLES, default 15)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import ServeProcess  # noqa: E402

pytestmark = pytest.mark.timeout(300)
TOKEN = "fuzz-token-0123456789abcdef"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
CHAINS = """\
chain brief -m openai:gpt-4o-mini
input topic
input style = "plain"
step outline: max_tokens=8
    List questions about {topic}, {style}.
step answers: max_tokens=8
    Answer: {outline}

chain hello
input who = "world"
input times = 1
step a: max_tokens=5
    Say hello to {who} {times} times.
"""


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    file = tmp / "chains.n3"
    file.write_text(CHAINS, encoding="utf-8")
    p = ServeProcess(
        tmp,
        file,
        N3_SERVE_TOKEN=TOKEN,
        N3_OFFLINE="1",
        N3_EMULATOR_TOKEN_DELAY="0",
        N3_EMULATOR_FIRST_TOKEN_DELAY="0",
        N3_SERVE_MAX_PROMPT_CHARS="2000",
    )
    try:
        p.wait_ready()
        yield p
    finally:
        p.close()


def test_api_is_robust_and_matches_its_schema(fuzzed_server: ServeProcess) -> None:
    """Each operation in turn (schemathesis' lazy pytest loader does not run on pytest 9,
    so the operations are driven through its strategies here)."""
    auth = {"authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json", headers=auth)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    tested = []
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    for operation, mode in itertools.product(
        [result.ok() for result in schema.get_all_operations()], modes
    ):

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first case
        )
        def exercise(case: Any) -> None:
            response = case.call_and_validate(
                base_url=fuzzed_server.url, headers=auth, checks=checks, timeout=30
            )
            assert response.status_code < 500
            assert TOKEN not in response.text

        try:
            exercise()
        except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        tested.append(operation.label)
    assert len(set(tested)) >= 9, tested  # 2 per chain, 2 generate, healthz, metrics, chains
    assert TOKEN not in fuzzed_server.output()
