from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bounce_handler.judge.evidence import dumps

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                  allow_infinity=False) | st.text()


@given(st.dictionaries(st.text(), scalars | st.lists(scalars, max_size=4), max_size=6))
def test_dumps_is_json(d):
    assert json.loads(dumps(d)) == d


def test_control_characters_and_quotes_are_escaped():
    text = dumps({"diagnostic": 'say "hi"\\\n\x00\u2028'})
    assert "\n" not in text and "\u2028" not in text
    assert json.loads(text) == {"diagnostic": 'say "hi"\\\n\x00\u2028'}


def test_lone_surrogates_become_escapes():
    text = dumps({"d": "caf\udce9"})
    text.encode("utf-8")
    assert json.loads(text) == {"d": "caf\udce9"}
