"""The error hierarchy and redaction: every error is an LLMError, carries provider, status,
request id and the provider's message, pickles, and never shows a key."""

from __future__ import annotations

import inspect
import pickle
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import n3_notebook
from n3_notebook.core import errors
from n3_notebook.core.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    LLMError,
    LLMTimeoutError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamingNotSupportedError,
    StreamProtocolError,
    error_class_for_status,
)
from n3_notebook.core.redact import MASK, mask_url, redact, register_secret

ERROR_CLASSES = sorted(
    (
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    ),
    key=lambda c: c.__name__,
)

# Key-shaped strings, never registered: masked by shape alone.
OPENAI_KEY = "sk-proj-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7_-x0" * 2
ANTHROPIC_KEY = "sk-ant-api03-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-_dc" * 2
GOOGLE_KEY = "AIzaSyD" + "4f5g6h7j8k9l0zxcvbnmqwertyuiop"
LEGACY_KEY = "sk-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4"


def _secret() -> str:
    return f"registered-{uuid.uuid4().hex}"


def _all_leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def test_there_are_error_classes() -> None:
    names = {c.__name__ for c in ERROR_CLASSES}
    for expected in (
        "LLMError",
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "RateLimitError",
        "LLMTimeoutError",
        "APIStatusError",
        "APIConnectionError",
        "StreamProtocolError",
        "StreamingNotSupportedError",
        "ContentFilteredError",
        "BadRequestError",
        "OverloadedError",
        "ServerError",
        "ConfigurationError",
        "MissingAPIKeyError",
        "UnknownModelError",
    ):
        assert expected in names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_an_llm_error_and_an_exception(cls: type[Exception]) -> None:
    assert issubclass(cls, LLMError)
    assert issubclass(cls, Exception)
    err = cls("boom", provider="p", status_code=500, request_id="req_9")
    with pytest.raises(LLMError):
        raise err


def test_status_errors_are_api_status_errors() -> None:
    for cls in (
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        BadRequestError,
        RateLimitError,
        OverloadedError,
        ServerError,
    ):
        assert issubclass(cls, APIStatusError)


def test_timeout_error_does_not_shadow_the_builtin() -> None:
    assert not hasattr(errors, "TimeoutError")
    assert n3_notebook.LLMTimeoutError is LLMTimeoutError
    assert issubclass(LLMTimeoutError, LLMError)


def test_cancellation_is_not_an_llm_error() -> None:
    import asyncio

    assert not issubclass(asyncio.CancelledError, LLMError)
    assert not issubclass(KeyboardInterrupt, LLMError)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_attributes_and_str(cls: type[LLMError]) -> None:
    err = cls(
        "model overloaded",
        provider="anthropic",
        status_code=529,
        request_id="req_011CKw",
        provider_message="Overloaded",
    )
    assert err.provider == "anthropic"
    assert err.status_code == 529
    assert err.request_id == "req_011CKw"
    assert err.message == "model overloaded"
    assert err.provider_message == "Overloaded"
    text = str(err)
    for part in ("anthropic", "529", "model overloaded", "req_011CKw"):
        assert part in text
    assert cls.__name__ in repr(err)
    assert "req_011CKw" in repr(err)


def test_str_without_optional_parts() -> None:
    err = StreamProtocolError("stream ended early")
    assert str(err) == "stream ended early"
    assert err.provider is None and err.status_code is None and err.request_id is None
    assert err.provider_message is None


def test_default_hint_and_explicit_hint() -> None:
    assert "API key" in str(AuthenticationError("no", provider="openai", status_code=401))
    assert str(AuthenticationError("no", hint="")) == "no"
    assert "try later" in str(RateLimitError("slow down", hint="try later"))


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_pickle_round_trip(cls: type[LLMError]) -> None:
    err = cls(
        "msg",
        provider="gemini",
        status_code=403,
        request_id="rid",
        provider_message="pm",
        hint="h",
        retry_after=2.5,
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert vars(back) == vars(err)
    assert str(back) == str(err)
    assert back.args == err.args


def test_pickle_keeps_default_hint_and_none_fields() -> None:
    err = AuthenticationError("denied")
    back = pickle.loads(pickle.dumps(err))
    assert back.hint == AuthenticationError.default_hint
    assert back.provider is None and back.provider_message is None
    assert back.retry_after is None


# --- keys never shown ------------------------------------------------------------------


@pytest.mark.parametrize("key", [OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, LEGACY_KEY])
def test_key_shaped_strings_masked_everywhere(key: str) -> None:
    err = AuthenticationError(
        f"Incorrect API key provided: {key}.",
        provider="x",
        status_code=401,
        provider_message=f'{{"error": {{"message": "bad key {key}"}}}}',
        hint=f"use another than {key}",
    )
    for text in (str(err), repr(err), err.message, err.provider_message, err.hint, *err.args):
        assert key not in text
        assert key[:12] not in text
    assert MASK in str(err)


def test_registered_secret_masked() -> None:
    secret = _secret()
    register_secret(secret)
    err = APIConnectionError(
        f"could not connect with {secret}",
        provider="ollama",
        provider_message=f"header x-custom: {secret}",
    )
    for text in (str(err), repr(err), err.provider_message, *err.args):
        assert secret not in text


def test_secret_registered_after_the_error_is_masked_too() -> None:
    secret = _secret()
    err = ServerError(f"echo {secret}", provider="p", status_code=500, request_id=secret)
    register_secret(secret)
    assert secret not in str(err)
    assert secret not in repr(err)


def test_short_or_empty_secret_is_not_registered() -> None:
    register_secret(None)
    register_secret("")
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_overlapping_secrets_masked_whole() -> None:
    short, long = _secret(), None
    long = short + "-and-more"
    register_secret(short)
    register_secret(long)
    assert redact(f"x {long} y") == f"x {MASK} y"


def test_secret_with_regex_characters() -> None:
    secret = f"a.b*c+d?({uuid.uuid4().hex})[x]"
    register_secret(secret)
    assert secret not in redact(f"key={secret}!")
    assert redact("a.b*c+d?") == "a.b*c+d?"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abcdefgh12345678",
        '{"headers": {"x-api-key": "abcdefgh12345678"}}',
        "x-goog-api-key=abcdefgh12345678",
        "api_key='abcdefgh12345678'",
        "API-KEY: abcdefgh12345678",
    ],
)
def test_key_headers_masked(text: str) -> None:
    assert "abcdefgh12345678" not in redact(text)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://user:pa55w0rd@api.example.com/v1", "pa55w0rd"),
        ("http://admin:hunter22@127.0.0.1:8080/x", "hunter22"),
        ("https://onlyuser@host/path", "onlyuser"),
        ("https://host/v1beta/models/m:streamGenerateContent?alt=sse&key=secret123", "secret123"),
        ("https://host/x?key=secret123", "secret123"),
        ("https://host/x?api_key=secret123&b=1", "secret123"),
        ("https://host/x?token=secret123#frag", "secret123"),
        ("https://host/x?a=1&access_token=secret123", "secret123"),
    ],
)
def test_url_credentials_masked(url: str, secret: str) -> None:
    assert secret not in mask_url(url)
    err = APIConnectionError(f"connect to {url} failed", provider="p")
    assert secret not in str(err)
    assert secret not in repr(err)


def test_url_without_credentials_untouched() -> None:
    url = "https://api.openai.com/v1/chat/completions?alt=sse&email=a@b.c"
    assert mask_url(url) == url
    assert mask_url("https://host/path") == "https://host/path"


def test_ordinary_words_are_not_masked() -> None:
    text = "risk-assessment-model task-management-v2 sk-short desk-abcdefghijk"
    assert redact(text) == text


def test_redact_empty_and_idempotent() -> None:
    assert redact("") == ""
    once = redact(f"k={OPENAI_KEY} https://u:p@h/?key=zzz")
    assert redact(once) == once


def test_non_string_message_is_accepted() -> None:
    err = LLMError(ValueError(f"inner {OPENAI_KEY}"))  # type: ignore[arg-type]
    assert OPENAI_KEY not in str(err)


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    body=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        min_size=20,
        max_size=60,
    ),
    shape=st.sampled_from(["sk-", "sk-ant-", "sk-proj-", "AIza"]),
)
def test_property_key_shapes_never_survive(prefix: str, suffix: str, body: str, shape: str) -> None:
    key = shape + body
    # a key starts a token: after a space, quote, colon or the like, never mid-word
    err = RateLimitError(f"{prefix} {key} {suffix}", provider="p", status_code=429)
    assert key not in str(err)
    assert key not in repr(err)


# --- status -> class -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, BadRequestError),
        (429, RateLimitError),
        (529, OverloadedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (418, APIStatusError),
        (408, APIStatusError),
        (409, APIStatusError),
    ],
)
def test_error_class_for_status(status: int, cls: type) -> None:
    assert error_class_for_status(status) is cls


def test_other_errors_are_not_status_errors() -> None:
    for cls in (APIConnectionError, StreamProtocolError, StreamingNotSupportedError):
        assert not issubclass(cls, APIStatusError)
    assert not issubclass(ContentFilteredError, APIStatusError)


def test_retryable_and_partial_chunks_are_fields_and_survive_pickling():
    import pickle

    plain = LLMError("x")
    assert plain.retryable is False and plain.partial_chunks == 0
    err = RateLimitError("slow down", provider="openai", retryable=True, partial_chunks=3)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError
    assert back.retryable is True and back.partial_chunks == 3


def test_seed_name_for_streaming_not_supported_is_kept():
    import n3_notebook
    from n3_notebook.core.errors import ProviderStreamingNotSupportedError

    assert ProviderStreamingNotSupportedError is StreamingNotSupportedError
    assert n3_notebook.ProviderStreamingNotSupportedError is StreamingNotSupportedError
