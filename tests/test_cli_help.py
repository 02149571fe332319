"""Help text is documentation: every `bounces` verb has a docstring with an example."""

from __future__ import annotations

import subprocess

import pytest

from bounce_handler import cli
from tests.conftest import script


@pytest.mark.parametrize("name", cli.VERBS)
def test_verb_docstring_has_summary_and_example(name):
    module = cli.verb_module(name)
    doc = module.__doc__ or ""
    assert doc.strip(), f"{name}: no module docstring"
    # the top-level help's summary is the docstring's first line
    assert cli.VERBS[name] == doc.strip().splitlines()[0]
    assert "bounces " in doc and ("Example" in doc or "example" in doc), f"{name}: no example"
    assert module.run.__doc__ and module.register.__doc__


@pytest.mark.parametrize("name", cli.VERBS)
def test_verb_help_runs(name):
    proc = subprocess.run([script("bounces"), name, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: bounces {name}" in proc.stdout


def test_full_parser_builds_every_verb():
    parser = cli.build_parser()  # every module imported and registered: no clashes
    assert parser.parse_args(["db", "current"]).verb == "db"


def test_top_level_help_lists_every_verb():
    proc = subprocess.run([script("bounces"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in cli.VERBS:
        assert name in proc.stdout


def test_unknown_config_key_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[database]\nurll = 'x'\n")
    proc = subprocess.run(
        [script("bounces"), "--config", str(cfg), "db", "current"], capture_output=True, text=True
    )
    assert proc.returncode == 78
    assert "unknown key 'urll' in [database]" in proc.stderr
    assert "Traceback" not in proc.stderr
