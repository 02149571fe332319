"""docs/reasons.md is generated from classify's tables and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bounce_handler import classify

ROOT = Path(__file__).resolve().parent.parent


def load():
    path = ROOT / "scripts" / "reasons_doc.py"
    spec = importlib.util.spec_from_file_location("reasons_doc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_document_is_current():
    doc = load()
    assert (ROOT / "docs" / "reasons.md").read_text(encoding="utf-8") == doc.render(), (
        "docs/reasons.md is out of date: run .venv/bin/python scripts/reasons_doc.py")


def test_every_reason_and_rule_is_documented():
    text = (ROOT / "docs" / "reasons.md").read_text(encoding="utf-8")
    for reason in classify.REASONS:
        assert f"| `{reason}` |" in text, reason
    for name, _, _ in classify.DECIDE + classify.ADJUST:
        assert f"**{name}**" in text, name
    for reason in classify.REASONS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{reason}` |"))
        dead, hard = [cell.strip() for cell in row.split("|")[3:5]]
        assert (dead == "never") == (reason in classify.SENDER_SIDE), row
        assert (hard == "if permanent") == (reason in classify.HARD_REASONS), row
