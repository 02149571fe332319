"""In-process checks of the pipe's small pieces (argv, headers, log line, exit table)."""

from __future__ import annotations

import io

import pytest

from bounce_handler import pipe


def test_exit_table_only_has_zero_and_tempfail():
    assert set(pipe.EXIT.values()) == {0, 75}
    assert set(pipe.EXIT) == {"recorded", "spooled", "duplicate", "ignored", "quarantined",
                              "tempfail"}


def test_parse_argv_forms():
    o = pipe.parse_argv(["--config=/c.toml", "--sender", "s@x", "--", "--ext"])
    assert (o["config"], o["sender"], o["extension"]) == ("/c.toml", "s@x", "--ext")
    assert pipe.parse_argv([])["extension"] is None
    assert pipe.parse_argv(["--sender="])["sender"] == ""
    with pytest.raises(pipe.UsageError):
        pipe.parse_argv(["--sender"])
    with pytest.raises(pipe.UsageError):
        pipe.parse_argv(["--nope"])
    with pytest.raises(pipe.UsageError):
        pipe.parse_argv(["a", "b"])


def test_envelope_headers_only_from_the_prepended_lines():
    raw = (
        b"Return-Path: <>\r\nDelivered-To: bounces+a=b@r\r\nX-Original-To: x@r\r\n"
        b"From: m\r\n\r\nDelivered-To: deep@inside\r\n"
    )
    assert pipe.envelope_headers(raw) == {
        "return-path": "", "delivered-to": "bounces+a=b@r", "x-original-to": "x@r",
    }
    assert pipe.envelope_headers(b"From: m\n\nDelivered-To: x\n") == {}


def test_read_bounded_drains_and_counts():
    data, size, truncated = pipe.read_bounded(io.BytesIO(b"a" * 5000), 1000)
    assert (len(data), size, truncated) == (1000, 5000, True)
    assert pipe.read_bounded(io.BytesIO(b"abc"), 1000) == (b"abc", 3, False)


def test_logfmt_escapes_injection():
    line = pipe._logfmt([("a", "x y"), ("b", 'q"\nFAKE=1'), ("c", None), ("d", 3)])
    assert "\n" not in line
    assert line == 'a="x y" b="q\\"\\nFAKE=1" d=3'


def test_run_maps_any_exception_to_tempfail(tmp_path, monkeypatch):
    class Boom:
        def read(self, n):
            raise RuntimeError("disk on fire")

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/x.db"\n')
    code, line, fields, _ = pipe.run(["--config", str(cfg), "x"], Boom())
    assert code == 75
    assert line == "deferred: unexpected RuntimeError: disk on fire"
    assert ("outcome", "tempfail") in fields
