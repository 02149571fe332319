"""The detector registry: one ordered list, every entry a conforming Detector."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bounce_handler.parse import protocol, registry


def test_every_registered_detector_conforms():
    for det in registry.detectors():
        assert isinstance(det, protocol.Detector), det
        assert det.kind in (None, "complaint", "autoreply", "bounce", "delay", "delivery")
        module = sys.modules[type(det).__module__]
        assert module.__doc__ and len(module.__doc__.splitlines()) > 3, module.__name__


def test_names_are_unique_and_match_modules():
    names = [d.name for d in registry.detectors()]
    assert len(names) == len(set(names))
    assert len(registry.NAMES) == len(set(registry.NAMES))


def test_standards_come_first_and_fallback_last():
    order = list(registry.NAMES)
    assert order[:3] == ["rfc6533", "rfc3464", "arf"]
    assert order.index("autoreply") < order.index("postfix")
    assert order[-2:] == ["simple", "fallback"]


CHECK = r"""
import sys
from bounce_handler.parse import parse
r = parse(open(sys.argv[1], "rb").read())
assert r.recipients, r
heavy = {"email", "json", "typing", "dataclasses", "flufl.bounce", "sqlalchemy",
         "argparse", "asyncio", "structlog", "rich"}
loaded = sorted(m for m in heavy if m in sys.modules)
print(",".join(loaded))
print(sum(1 for m in sys.modules if m.startswith("bounce_handler.parse.")))
"""


@pytest.mark.parametrize("fixture", ["postfix_01.eml", "qmail_01.eml"])
def test_hot_path_imports_nothing_heavy(fixture):
    from tests.parse.test_corpus import DATA

    out = subprocess.run([sys.executable, "-c", CHECK, str(DATA / fixture)],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == ""
    # A DSN stops at the second detector: the vendor modules behind it are not loaded.
    if fixture == "postfix_01.eml":
        assert int(out[1]) < 10
