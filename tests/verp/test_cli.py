"""`bounces verp` through the real console script: file modes, exit codes, JSON."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from tests.conftest import script


class Verp:
    def __init__(self, root):
        self.root = root
        self.keys = root / "verp.keys"
        self.config = root / "config.toml"
        self.config.write_text(f'[verp]\nkey_file = "{self.keys}"\ndomain = "relay.example"\n')

    def __call__(self, *args):
        return subprocess.run(
            [script("bounces"), "--config", str(self.config), "verp", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def bv(tmp_path):
    return Verp(tmp_path)


def test_keygen_creates_0640_and_refuses_to_overwrite(bv):
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        p = bv("keygen")
    finally:
        os.umask(old_umask)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(bv.keys.stat().st_mode) == 0o640
    lines = [ln for ln in bv.keys.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("a ") and len(lines[0].split()[1]) == 64
    before = bv.keys.read_text()
    p = bv("keygen")
    assert p.returncode == 78
    assert "exists" in p.stderr and "--rotate" in p.stderr
    assert bv.keys.read_text() == before


def test_keygen_rotate_prepends_and_keeps_old_keys(bv):
    assert bv("keygen").returncode == 0
    old = bv("encode", "alice@example.com", "--sender", "news").stdout.strip()
    p = bv("keygen", "--rotate")
    assert p.returncode == 0, p.stderr
    assert "key 'b' signs, 1 older kept" in p.stdout
    ids = [ln.split()[0] for ln in bv.keys.read_text().splitlines() if ln and ln[0] != "#"]
    assert ids == ["b", "a"]
    assert stat.S_IMODE(bv.keys.stat().st_mode) == 0o640
    assert bv("decode", old).returncode == 0  # mail in flight still verifies
    new = bv("encode", "alice@example.com", "--sender", "news").stdout.strip()
    assert new.startswith("bounces+.b")


def test_keygen_group(bv):
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    assert bv("keygen", "--group", group).returncode == 0
    assert bv.keys.stat().st_gid == os.getgid()
    p = bv("keygen", "--rotate", "--group", "no-such-group-xyz")
    assert p.returncode == 78 and "no such group" in p.stderr


def test_encode_decode_json_exit_codes(bv):
    bv("keygen")
    p = bv("encode", "Alice+x@example.com", "--sender", "newsletter")
    assert p.returncode == 0, p.stderr
    address = p.stdout.strip()
    assert address.startswith("bounces+.a") and address.endswith("@relay.example")
    p = bv("decode", address, "--format", "json")
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert {k: out[k] for k in ("recipient", "sender", "verified", "reason")} == {
        "recipient": "Alice+x@example.com",
        "sender": "newsletter",
        "verified": True,
        "reason": None,
    }
    local, _, dom = address.rpartition("@")
    tampered = local[:12] + ("x" if local[12] != "x" else "y") + local[13:] + "@" + dom
    p = bv("decode", tampered, "--format", "json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["reason"] == "bad-tag"


def test_decode_xverp_exits_1_unsigned(bv):
    p = bv("decode", "bounces+alice=example.com@relay.example", "--format", "json")
    assert p.returncode == 1
    assert json.loads(p.stdout) == {
        "recipient": "alice@example.com",
        "sender": None,
        "verified": False,
        "reason": "unsigned",
        "token": "alice=example.com",
    }


def test_decode_text_format_and_bare_token(bv):
    p = bv("decode", "alice=example.com")
    assert p.returncode == 1
    assert "NOT verified (unsigned)" in p.stdout and "alice@example.com" in p.stdout


def test_decode_not_a_bounce_address(bv):
    p = bv("decode", "alice@example.com")
    assert p.returncode == 65 and "not a bounce address" in p.stderr


def test_signed_token_without_key_file_is_config_error(bv):
    p = bv("decode", "bounces+.aaaaaaaaaax@relay.example")
    assert p.returncode == 78
    assert str(bv.keys) in p.stderr and "does not exist" in p.stderr


def test_encode_too_long(bv):
    bv("keygen")
    rcpt = "a.rather.long.recipient.address@subdomain.example-company.com"
    p = bv("encode", rcpt, "--sender", "news@corp.example")
    assert p.returncode == 0 and "carries the sender only" in p.stderr
    assert len(p.stdout.strip().rpartition("@")[0]) <= 64
    p = bv("encode", rcpt, "--sender", "news@corp.example", "--strict")
    assert p.returncode == 65 and "RFC 5321" in p.stderr and p.stdout == ""


def test_encode_per_sender(bv):
    bv("keygen")
    p = bv("encode", "--sender", "news@corp.example")
    assert p.returncode == 0
    out = json.loads(bv("decode", p.stdout.strip(), "--format", "json").stdout)
    assert (out["sender"], out["recipient"], out["verified"]) == ("news@corp.example", None, True)


def test_key_file_unreadable_by_the_pipe_user(tmp_path, pipe_bin):
    # Root reads any file, so the check runs the real CLI as the pipe's user (nobody),
    # from a bin directory nobody can execute (pipe_bin), wherever the checkout lives.
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and runuser to act as the pipe user")
    root = tempfile.mkdtemp(prefix="bh-verp-perm-", dir="/tmp")
    try:
        os.chmod(root, 0o755)
        bv = Verp(__import__("pathlib").Path(root))
        assert bv("keygen").returncode == 0  # root:root 0640: not nobody's group
        os.chmod(bv.config, 0o644)
        p = subprocess.run(
            [
                "runuser",
                "-u",
                "nobody",
                "--",
                os.path.join(pipe_bin, "bounces"),
                "--config",
                str(bv.config),
                "verp",
                "decode",
                "bounces+.aaaaaaaaaax@relay.example",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 78, p.stderr
        assert str(bv.keys) in p.stderr and "permission denied for uid 65534" in p.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
