"""Fixtures for the VERP tests: a real key file and settings naming it."""

from __future__ import annotations

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler import verp

KEY_A = "a " + "11" * 32
KEY_B = "b " + "22" * 32
NOW = 1_795_000_000.0  # 2026-11-18, a fixed clock: tokens are a function of it


def make_settings(key_file, **verp_overrides):
    values = {"key_file": str(key_file), "domain": "relay.example"}
    values.update(verp_overrides)
    return settings_mod.from_dict({"verp": values})


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "verp.keys"
    path.write_text(f"# test keys\n{KEY_A}\n{KEY_B}\n")
    return path


@pytest.fixture
def cfg(key_file):
    return make_settings(key_file)


@pytest.fixture
def ring(key_file):
    return verp.load_keys(str(key_file))
