import json

import pytest

from n3_notebook.core import fastjson


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\ud83d"}',  # a lone surrogate escape: orjson refuses, json accepts
        '{"n": 9007199254740993, "created": 1741569952}',
        '{"t": "caf\\u00e9 \\u2028 ok"}',
        "[1, 2.5, null, true]",
    ],
)
def test_same_as_json(text):
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(text.encode("utf-8")) == json.loads(text)


def test_malformed_still_raises_value_error():
    with pytest.raises(ValueError):
        fastjson.loads('{"choices": [tr')
