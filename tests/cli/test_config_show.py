"""Issue 16: `bounces config show --defaults` is generated from the schema, [rules] included.

It used to leave the judge's [rules.*] tables out (a comment with the raw table at most),
so the one place meant to document every key missed the ones that decide what gets
flagged.  Checked against the code: every key of settings.SCHEMA and of
judge/rules.OPTIONS is printed with its default and why, and the output is a configuration
file that loads back into the same settings.
"""

from __future__ import annotations

import tomllib

from bounce_handler import settings as settings_mod
from bounce_handler.judge.rules import OPTIONS, for_settings
from bounce_handler.settings import SCHEMA


def test_defaults_document_every_key_and_load_back(store, tmp_path):
    proc = store.bounces("config", "show", "--defaults")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    doc = tomllib.loads(text)
    for section, keys in SCHEMA.items():
        assert set(doc[section]) == set(keys), section
    assert set(doc["rules"]) == set(OPTIONS)
    for section, keys in OPTIONS.items():
        assert set(doc["rules"][section]) == set(keys), section
        for key, (_typ, _default, why) in keys.items():
            # The why precedes the key (first words, as wrapped at 88 columns).
            block = text[text.index(f"[rules.{section}]"):]
            block = block[: block.index(f"\n{key} = ")]
            assert " ".join(why.split()[:4]) in " ".join(
                ln.lstrip("# ") for ln in block.splitlines()[-12:]), (section, key)
    # The output is a configuration: it loads into the settings it was printed from.
    out = tmp_path / "shown.toml"
    out.write_text(text)
    shown = settings_mod.load(str(out))
    here = settings_mod.load(str(store.config))
    for section in SCHEMA:
        assert getattr(shown, section).as_dict() == getattr(here, section).as_dict(), section
    assert for_settings(shown).as_dict() == for_settings(here).as_dict()


def test_show_prints_the_rules_in_effect(store):
    store.write_config("[rules.compromised_sender]\nmax_bounces = 7\n"
                       "exempt_senders = [\"news@corp.example\"]\n")
    doc = tomllib.loads(store.bounces("config", "show").stdout.decode())
    assert doc["rules"]["compromised_sender"]["max_bounces"] == 7
    assert doc["rules"]["compromised_sender"]["exempt_senders"] == ["news@corp.example"]
    assert doc["rules"]["dead_recipient"]["enabled"] is True  # defaults filled in
    assert doc["rules"]["throttled_destination"]["providers"]["google"] == [
        "gmail.com", "googlemail.com"]
