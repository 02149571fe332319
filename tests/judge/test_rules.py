"""The [rules] table: defaults, validation, and the numbered list of rules."""

from __future__ import annotations

import re

import pytest

from bounce_handler import settings
from bounce_handler.judge import rules
from bounce_handler.settings import ConfigError


def test_defaults_are_documented_and_typed():
    r = rules.defaults()
    for section, keys in rules.OPTIONS.items():
        for key, (typ, default, why) in keys.items():
            assert len(why) > 30 and why.endswith((".", ")")), f"{section}.{key} needs a why"
            assert isinstance(default, typ)
    assert r.sender.window_minutes == 10 and r.sender.max_bounces == 50
    assert r.sender.max_domains == 20
    assert r.dead.soft_days == 4 and r.dead.quiet_reset_days == 7
    assert "userunknown" in r.dead.hard_reasons and "5.1.10" in r.dead.hard_statuses
    assert r.dest.min_deferrals == 5 and "tss04" in r.dest.markers
    assert r.provider_of["aol.com"] == "yahoo"


def test_rules_are_numbered_once_in_order_and_each_is_used():
    numbers = [n for n, _, _ in rules.RULES]
    assert numbers == [f"R{i}" for i in range(1, len(numbers) + 1)]
    import bounce_handler.judge.core as core

    source = open(core.__file__).read()
    for n in numbers:
        assert f'"{n}"' in source, f"{n} is listed but never decided"
    assert set(re.findall(r'"(R\d+)"', source)) == set(numbers)


def test_the_sender_side_reasons_include_the_ones_the_issue_names():
    side = rules.defaults().dead.sender_side_reasons
    for reason in ("blocked", "spamdetected", "badreputation", "authfailure", "ratelimited",
                   "policyviolation"):
        assert reason in side


def test_what_can_make_a_recipient_dead_is_classify_s_table():
    """One place decides it: classify.REASON_TABLE (docs/reasons.md is generated from it)."""
    from bounce_handler import classify

    dead = rules.defaults().dead
    assert set(dead.sender_side_reasons) == set(classify.SENDER_SIDE)
    assert set(dead.hard_reasons) == set(classify.HARD_REASONS)
    for reason in classify.REASONS:
        counts = classify.SIDE[reason] in classify.COUNTS
        assert (reason not in dead.sender_side_reasons) == counts, reason


def test_a_message_too_big_never_makes_a_recipient_dead():
    # Sisimai 5 merged mesgtoobig and exceedlimit into emailtoolarge; the list named only
    # the old names, so a too-big message counted towards R2 like a full mailbox.
    from bounce_handler.judge.core import dead_mode

    event = {"recipient": "big@example.org", "kind": "bounce", "reason": "emailtoolarge",
             "status": "5.3.4", "hard": 0, "verified": 1, "trusted": True}
    assert dead_mode(event, rules.defaults()) is None


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"dead_recipients": {}}, r"unknown table \[rules.dead_recipients\]"),
        ({"dead_recipient": {"soft_day": 3}}, "unknown key 'soft_day'"),
        ({"compromised_sender": {"max_bounces": "50"}}, "max_bounces must be int"),
        ({"compromised_sender": {"max_bounces": -1}}, "must not be negative"),
        ({"compromised_sender": {"exempt_senders": "a@b"}}, "must be a list of strings"),
        ({"throttled_destination": {"rate_delay": "fast"}}, "Postfix time"),
        ({"throttled_destination": {"transport_prefix": "Slow-"}}, "master.cf service name"),
        ({"throttled_destination": {"providers": {"a": ["x.com"], "b": ["x.com"]}}},
         "x.com is in providers"),
        ({"dead_recipient": 3}, "must be a table"),
    ],
)
def test_bad_rules_are_errors(raw, message):
    with pytest.raises(ConfigError, match=message):
        rules.parse(raw)


def test_rules_from_a_settings_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[rules.compromised_sender]\nmax_bounces = 100\njump_factor = 5\n'
                    '[rules.throttled_destination]\nrate_delay = "2s"\n')
    r = rules.parse(settings.load(str(path)).rules)
    assert r.sender.max_bounces == 100 and r.sender.jump_factor == 5.0
    assert r.dest.rate_delay == "2s"
    assert r.dead.soft_days == 4


def test_rules_are_frozen_plain_objects():
    r = rules.defaults()
    with pytest.raises(AttributeError):
        r.sender.max_bounces = 1
    assert not hasattr(r.sender, "__dict__")


def test_describe_lists_every_rule_and_option():
    text = rules.describe()
    for n, _, _ in rules.RULES:
        assert f"  {n} " in text
    for keys in rules.OPTIONS.values():
        for key in keys:
            assert f"  {key} = " in text
