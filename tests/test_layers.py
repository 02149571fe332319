"""The arrows between rooms (ARCHITECTURE.md): settings is a leaf, classify does no I/O.

Issue 15: ``settings.write_cache`` imported the parser's pattern precompiler, whose
``lazyre`` imported ``settings`` back to read the table, so classifying a diagnostic read
a file.  Each check runs in a fresh interpreter: what it imports is the point.
"""

from __future__ import annotations

import json
import subprocess
import sys


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_settings_is_a_leaf(tmp_path):
    """Loading, validating and caching the settings imports nothing else of the project."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:////tmp/x.db"\n')
    out = _run(
        "import sys\n"
        "from bounce_handler import settings\n"
        f"s = settings.load({str(cfg)!r})\n"
        "assert settings.write_cache(s)\n"
        "assert settings.load() is not None\n"
        "import json\n"
        "print(json.dumps({'mods': sorted(m for m in sys.modules"
        " if m.startswith('bounce_handler'))}))\n"
    )
    assert out["mods"] == ["bounce_handler", "bounce_handler.settings"]
    # and the cache it wrote is the settings' alone: the pattern table is the CLI's
    assert not (tmp_path / ".config.toml.patterns").exists()


def test_classify_does_no_io_and_imports_no_settings():
    """Classifying with a precompiled table handed in: no file opened, settings not loaded.

    The diagnostics reach classify's lazily compiled vendor patterns ("TS01", "RP-001"),
    so a table is consulted; it comes from the function the edge gave lazyre.
    """
    out = _run(
        "import sys\n"
        "from bounce_handler import classify\n"
        "from bounce_handler.parse import lazyre, precompile\n"
        "table = precompile.build()\n"
        "lazyre.use_table(lambda: table)\n"
        "opened = []\n"
        "sys.addaudithook(lambda ev, args: opened.append(str(args[0])) if ev == 'open' "
        "else None)\n"
        "got = [classify.classify(s, d, 'failed', None) for s, d in (\n"
        "    ('4.7.0', '421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred'),\n"
        "    ('5.7.1', '550 5.7.1 Unfortunately, messages from [192.0.2.1] weren t sent.'\n"
        "              ' RP-001'),\n"
        "    ('5.1.1', '550 5.1.1 user unknown'))]\n"
        "n = len(opened)\n"
        "import json\n"
        "print(json.dumps({'opened': opened[:n], 'settings': 'bounce_handler.settings' in "
        "sys.modules, 'compiled': sum(p._rx is not None for p in lazyre.ALL)}))\n"
    )
    assert out["compiled"] >= 2  # the vendor patterns ran (from the table)
    assert out["opened"] == []
    assert out["settings"] is False
