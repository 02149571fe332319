"""deploy/ stays true: the example config has every key, the snippets make the choices the
handler depends on (checked on the files, so a careless edit fails here first)."""

from __future__ import annotations

import re

from bounce_handler import settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def test_config_example_lists_every_key_and_loads():
    text = (DEPLOY / "config.toml").read_text()
    section = None
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^#? ?(\w+) = ", line)
        if m and section:
            found.setdefault(section, set()).add(m.group(1))
    assert {s: set(keys) for s, keys in settings.SCHEMA.items()} == found, (
        "deploy/config.toml is out of date: run bash deploy/config-example.sh"
    )
    # As shipped (every key commented) it is valid and means "all defaults".
    loaded = settings.load(str(DEPLOY / "config.toml"))
    assert loaded.as_dict() | {"path": None} == settings.defaults().as_dict()


def master_entry() -> list[str]:
    lines = (DEPLOY / "postfix" / "master.cf").read_text().splitlines()
    entry = [ln for ln in lines if ln and not ln.startswith("#")]
    return " ".join(entry).split()


def test_master_cf_entry():
    fields = master_entry()
    name, type_, private, unpriv, chroot, _wakeup, maxproc, command = fields[:8]
    assert name != "bounce" and (type_, command) == ("unix", "pipe")
    assert (unpriv, chroot) == ("n", "n")
    assert 1 <= int(maxproc) <= 100
    attrs = dict(a.split("=", 1) for a in fields[8:] if "=" in a and not a.startswith("argv"))
    assert "u" not in attrs["flags"]  # lowercasing breaks signed tokens
    assert "R" in attrs["flags"] and "null_sender" in attrs
    assert attrs["user"] not in ("root", "postfix")
    argv = fields[fields.index(next(a for a in fields if a.startswith("argv="))) :]
    assert argv[0] == "argv=/opt/bounce-handler/venv/bin/bounce-handler"
    assert argv[1:] == ["--config", "/etc/bounce-handler/config.toml", "--", "${extension}"]


def main_params() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "postfix" / "main.cf").read_text().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def test_main_cf_snippet():
    p = main_params()
    name = master_entry()[0]
    assert p[f"{name}_destination_recipient_limit"] == "1"
    assert p["recipient_delimiter"] == settings.defaults().verp.recipient_delimiter
    from bounce_handler.cli.doctor import time_seconds

    assert (
        time_seconds(p[f"{name}_time_limit"]) >= 2 * settings.defaults().database.busy_timeout + 20
    )
    assert {"bounce", "delay"} <= {c.strip() for c in p["notify_classes"].split(",")}
    assert p["bounce_notice_recipient"] == p["delay_notice_recipient"]
    assert time_seconds(p["delay_warning_time"]) > 0  # 0 (the default) means no delay notices
