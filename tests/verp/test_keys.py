"""The key file: format errors name the file, the line and why; the ring re-reads on change."""

from __future__ import annotations

import os

import pytest

from bounce_handler import verp
from tests.verp.conftest import KEY_A, KEY_B, NOW, make_settings


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no keys"),
        ("# only a comment\n\n", "no keys"),
        ("a\n", "line 1: expected 'KEYID HEXSECRET'"),
        ("a 0011 extra\n", "line 1: expected 'KEYID HEXSECRET'"),
        ("# c\nab " + "11" * 32 + "\n", "line 2: key id 'ab' must be one character"),
        ("A " + "11" * 32 + "\n", "key id 'A' must be one character a-z or 0-9"),
        ("a " + "zz" * 32 + "\n", "line 1: secret is not hexadecimal"),
        ("a " + "11" * 8 + "\n", "line 1: secret has 8 bytes, at least 16 needed"),
        (f"{KEY_A}\n{KEY_A}\n", "line 2: key id 'a' appears twice"),
    ],
)
def test_bad_key_files(tmp_path, text, why):
    path = tmp_path / "k"
    path.write_text(text)
    with pytest.raises(verp.VerpKeyError) as e:
        verp.load_keys(str(path))
    assert str(path) in str(e.value) and why in str(e.value)


def test_missing_key_file(tmp_path):
    with pytest.raises(verp.VerpKeyError, match="does not exist.*bounces verp keygen"):
        verp.load_keys(str(tmp_path / "nope"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file(tmp_path):
    path = tmp_path / "k"
    path.write_text(KEY_A + "\n")
    path.chmod(0)
    with pytest.raises(verp.VerpKeyError, match="permission denied"):
        verp.load_keys(str(path))


def test_first_key_signs_all_verify(tmp_path):
    path = tmp_path / "k"
    path.write_text(f"{KEY_B}\n{KEY_A}\n")
    ring = verp.load_keys(str(path))
    assert ring.ids == ("b", "a") and ring.signing_id == "b"
    assert "a" in ring and "z" not in ring
    for line in (KEY_A, KEY_B):  # never the secrets (the path may contain any digits)
        assert line.split()[1] not in repr(ring)


def test_mac_is_rfc_2104_hmac_sha256(tmp_path):
    import hashlib
    import hmac

    path = tmp_path / "k"
    path.write_text(f"{KEY_A}\n")
    ring = verp.load_keys(str(path))
    secret = bytes.fromhex(KEY_A.split()[1])
    assert ring.mac("a", b"hello") == hmac.new(secret, b"hello", hashlib.sha256).digest()
    long_secret = bytes(range(100))  # longer than the SHA-256 block: hashed first
    ring2 = verp.KeyRing([("x", long_secret)])
    assert ring2.mac("x", b"m") == hmac.new(long_secret, b"m", hashlib.sha256).digest()


def test_ring_is_reread_when_the_file_changes(tmp_path):
    path = tmp_path / "k"
    path.write_text(f"{KEY_A}\n")
    cfg = make_settings(path)
    t = verp.split_address(verp.encode("x@y.example", "s", cfg, NOW), cfg)
    assert t.startswith(".a")
    path.write_text(f"{KEY_B}\n{KEY_A}\n")
    os.utime(path, ns=(1, 1))  # a different mtime even within one clock tick
    t2 = verp.split_address(verp.encode("x@y.example", "s", cfg, NOW), cfg)
    assert t2.startswith(".b")
    assert verp.decode(t, cfg, NOW).verified
