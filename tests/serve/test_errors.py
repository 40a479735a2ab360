"""The HTTP form of provider errors: a rate-limited upstream's own wait reaches the client."""

from __future__ import annotations

import pytest

from n3_notebook.core.errors import OverloadedError, RateLimitError, ServerError
from n3_notebook.serve.errors import from_exception


@pytest.mark.parametrize(
    ("retry_after", "header"), [(None, "1"), (0.0, "1"), (0.2, "1"), (12.0, "12"), (20.2, "21")]
)
def test_busy_upstream_is_503_with_the_providers_wait(retry_after, header):
    for cls in (RateLimitError, OverloadedError):
        err = from_exception(
            cls("slow down", provider="openai", status_code=429, retry_after=retry_after)
        )
        assert (err.status, err.type) == (503, "upstream_overloaded")
        assert err.headers == {"retry-after": header}
        assert err.extra == {"provider": "openai", "upstream_status": 429}


def test_other_upstream_errors_ask_no_wait():
    err = from_exception(ServerError("boom", status_code=500, retry_after=30.0))
    assert (err.status, err.type, err.headers) == (502, "upstream_error", {})
