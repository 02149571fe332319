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
    o = pipe.parse_argv(["--sender=", "--", "x"])
    assert (o["sender"], o["extension"]) == ("", "x")
    # An entry without ${extension}: every argument is an option with its value.
    o = pipe.parse_argv(["--config", "/c.toml", "--queue-id", "Q1"])
    assert (o["config"], o["queue_id"], o["extension"]) == ("/c.toml", "Q1", None)
    # pipe(8) passes an empty ${extension} as '' (Postfix 3.7).
    assert pipe.parse_argv(["--config", "/c", "--", ""])["extension"] == ""
    assert pipe.parse_argv(["--config", "/c", ""])["extension"] == ""
    # A value may be "--": it is the option's, not the end of the options.
    o = pipe.parse_argv(["--sender", "--", "--", "ext"])
    assert (o["sender"], o["extension"]) == ("--", "ext")
    with pytest.raises(pipe.UsageError):
        pipe.parse_argv(["--nope", "x"])
    with pytest.raises(pipe.UsageError):
        pipe.parse_argv(["a", "b"])
    with pytest.raises(pipe.UsageError):
        pipe.parse_argv(["--config", "/c", "--", "a", "b"])


# What Postfix's pipe(8) passes for bounces+EXT@relay, through an entry written before
# the shipped one had "--" (argv=... --config PATH ${extension}) and through the shipped
# one: the extension is the extension, whatever it looks like (issue 14, item 4).
HOSTILE_EXTENSIONS = [
    "--help", "-h", "--version", "--", "-", "--x=example.com", "--queue-id=Q123",
    "--sender=forged@example.com", "--config=/etc/shadow", "--recipient", "--nope", "",
]


@pytest.mark.parametrize("ext", HOSTILE_EXTENSIONS)
@pytest.mark.parametrize("shipped", [True, False], ids=["with--", "legacy"])
def test_extension_is_never_an_option(ext, shipped):
    argv = ["--config", "/etc/bh.toml", *(["--"] if shipped else []), ext]
    o = pipe.parse_argv(argv)
    assert o["extension"] == ext
    assert o["config"] == "/etc/bh.toml"
    assert (o["sender"], o["queue_id"], o["recipient"], o["help"], o["version"]) == (
        None, None, None, None, None)
    # The bare entry of an old pipe.py docstring: argv=bounce-handler ${extension}.
    assert pipe.parse_argv([ext])["extension"] == ext


def test_help_and_version_only_for_a_person():
    msg = io.BytesIO(b"Delivered-To: bounces+--help@relay\n\nbody\n")
    assert pipe.wants_info(["--help"], msg) is None  # a delivery: the flag is its extension
    assert msg.read(1) == b"D"  # nothing of the message was consumed
    assert pipe.wants_info(["--help"], io.BytesIO(b"")) == "help"
    assert pipe.wants_info(["--version"], io.BytesIO(b"")) == "version"
    assert pipe.wants_info(["--config", "x", "--help"], io.BytesIO(b"")) is None


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
