"""Token encode/decode: round trips, the alphabet, lengths, and the distinct failure reasons."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bounce_handler import verp
from tests.verp.conftest import KEY_A, NOW, make_settings

TOKEN_ALPHABET = re.compile(r"\A[a-z0-9=._-]+\Z")
DAY = 86400.0
HYPO = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- address strategies: what real senders and recipients look like, and worse ----------

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
atom = st.text(ATEXT, min_size=1, max_size=12)
dot_atom = st.lists(atom, min_size=1, max_size=3).map(".".join)
# RFC 5321 quoted-string local part: any printable ASCII, quotes and backslashes escaped.
quoted = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=12).map(
    lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
utf8_local = st.text(st.characters(categories=("Ll", "Lu", "Lo", "Nd")), min_size=1, max_size=8)
ldh_label = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?\Z")
idn_label = st.text(st.characters(categories=("Ll", "Lo")), min_size=1, max_size=6)
domain = st.lists(st.one_of(ldh_label, idn_label), min_size=1, max_size=3).map(".".join)
address = st.builds(
    lambda local, dom: f"{local}@{dom}", st.one_of(dot_atom, quoted, utf8_local), domain
)
identity = st.one_of(address, atom, st.text(min_size=1, max_size=20))


def ext_of(address, cfg):
    return verp.split_address(address, cfg)


# -- round trips ------------------------------------------------------------------------


@HYPO
@given(recipient=address, sender=identity)
def test_decode_encode_round_trip(cfg, ring, recipient, sender):
    try:
        full = verp.encode(recipient, sender, cfg, NOW, key=ring, fallback=False)
    except verp.VerpTooLong:
        assume(False)
    result = verp.decode(ext_of(full, cfg), cfg, NOW)
    assert (result.recipient, result.sender, result.verified, result.reason) == (
        recipient,
        sender,
        True,
        None,
    )


@HYPO
@given(
    recipient=st.one_of(st.none(), st.text(min_size=1, max_size=40)),
    sender=st.text(min_size=1, max_size=40),
)
def test_codec_round_trips_any_text(cfg, ring, recipient, sender):
    # make_token has no length cap: the escaping itself must be lossless for any string.
    token = verp.make_token(recipient, sender, ring, NOW)
    assert TOKEN_ALPHABET.match(token), token
    result = verp.decode(token, cfg, NOW)
    assert result.verified, result
    assert (result.recipient, result.sender) == (recipient, sender)


@pytest.mark.parametrize("recipient", [".aaaa", ".0", ".abcdefgh", "..x@y.example"])
def test_a_recipient_starting_with_a_dot_is_not_read_as_a_nonce(cfg, ring, recipient):
    # "SENDER==.NONCE" marks a per-sender token; a recipient written with a leading "."
    # was read as a (malformed) nonce and the bounce lost its attribution.
    token = verp.make_token(recipient, "0", ring, NOW)
    result = verp.decode(token, cfg, NOW)
    assert (result.verified, result.recipient, result.sender) == (True, recipient, "0")


@HYPO
@given(recipient=address, sender=identity)
def test_token_is_a_safe_lowercase_dot_atom_within_64_octets(cfg, ring, recipient, sender):
    try:
        full = verp.encode(recipient, sender, cfg, NOW, key=ring)
    except verp.VerpTooLong:
        assume(False)
    local = full.rpartition("@")[0]
    token = ext_of(full, cfg)
    assert len(local) <= 64
    assert TOKEN_ALPHABET.match(token), token
    # RFC 5322 dot-atom: no empty atom, so the address needs no quoting anywhere.
    assert ".." not in local and not local.endswith(".")


@HYPO
@given(recipient=address, sender=identity)
def test_token_survives_case_folding(cfg, ring, recipient, sender):
    # pipe(8)'s u flag lower-cases ${extension}; some MTAs upper-case return paths.
    token = verp.make_token(recipient, sender, ring, NOW)
    for mangled in (token.lower(), token.upper()):
        result = verp.decode(mangled, cfg, NOW)
        assert result.verified and result.recipient == recipient and result.sender == sender


@pytest.mark.parametrize(
    "recipient",
    [
        "alice+news@example.com",
        "a=b@example.com",
        "bounces+x=y@example.com",
        '"john doe"@example.com',
        '"a@b"@example.com',
        '"w\\"q"@example.com',
        "Alice.Smith@Example.COM",
        "jörg@bücher.example",
        "用户@例子.广告",
        "postmaster",
        "trailing.dot.@example.com",
        "x@example.com.",
        "under_score@ex_ample.com",
    ],
)
def test_round_trip_examples(cfg, ring, recipient):
    full = verp.encode(recipient, "n@corp.example", cfg, NOW, key=ring, fallback=False)
    result = verp.decode(ext_of(full, cfg), cfg, NOW)
    assert result.verified and result.recipient == recipient
    assert result.sender == "n@corp.example"


def test_readable_example(cfg, ring):
    full = verp.encode("alice+news@example.com", "newsletter", cfg, NOW, key=ring)
    assert full.startswith("bounces+.a")
    assert full.endswith("newsletter==alice_-news=example.com@relay.example")


# -- lengths ----------------------------------------------------------------------------


def test_ordinary_addresses_fit_with_sender_and_recipient(cfg, ring):
    full = verp.encode("john.smith@gmail.com", "newsletter@mycompany.com", cfg, NOW, key=ring)
    local = full.rpartition("@")[0]
    assert len(local) == 64  # 8 prefix + 10 header + 24 + 2 + 20: exactly the cap
    assert verp.decode(ext_of(full, cfg), cfg, NOW).recipient == "john.smith@gmail.com"


def test_too_long_drops_recipient_and_keeps_signed_sender(cfg, ring):
    rcpt = "a.rather.long.recipient.address@subdomain.example-company.com"
    full = verp.encode(rcpt, "news@corp.example", cfg, NOW, key=ring)
    assert len(full.rpartition("@")[0]) <= 64
    result = verp.decode(ext_of(full, cfg), cfg, NOW)
    assert result.verified and result.recipient is None
    assert result.sender == "news@corp.example"


def test_too_long_strict_refuses_with_sizes(cfg, ring):
    rcpt = "a.rather.long.recipient.address@subdomain.example-company.com"
    with pytest.raises(verp.VerpTooLong, match=r"is \d+ octets; the local part leaves 56"):
        verp.encode(rcpt, "news@corp.example", cfg, NOW, key=ring, fallback=False)


def test_too_long_sender_is_refused(cfg, ring):
    with pytest.raises(verp.VerpTooLong, match="use a shorter identity"):
        verp.encode("a@b.c", "x" * 47, cfg, NOW, key=ring)
    assert verp.encode(None, "x" * 46, cfg, NOW, key=ring)  # 8 + 10 + 46 = 64


def test_longer_prefix_shrinks_budget(key_file, ring):
    cfg = make_settings(key_file, prefix="bounce-processing")
    with pytest.raises(verp.VerpTooLong, match="leaves 46 after 'bounce-processing\\+'"):
        verp.encode("a@b.c", "x" * 37, cfg, NOW, key=ring)


# -- verification failures: one distinct reason each ------------------------------------


def token(cfg, ring, now=NOW):
    return ext_of(verp.encode("alice@example.com", "news@corp.example", cfg, now, key=ring), cfg)


def test_tampered_tag_is_bad_tag(cfg, ring):
    t = token(cfg, ring)
    pos = 4  # first tag character
    forged = t[:pos] + ("b" if t[pos] != "b" else "c") + t[pos + 1 :]
    r = verp.decode(forged, cfg, NOW)
    assert (r.verified, r.reason) == (False, "bad-tag")
    assert r.recipient == "alice@example.com"  # the claim is kept for the record


def test_changed_recipient_is_bad_tag(cfg, ring):
    forged = token(cfg, ring).replace("alice=", "carol=")
    assert verp.decode(forged, cfg, NOW).reason == "bad-tag"


def test_changed_stamp_is_bad_tag_not_expired(cfg, ring):
    # Making an old token "young" again must not work: the stamp is signed.
    old = token(cfg, ring, now=NOW - 60 * DAY)
    fresh = token(cfg, ring)
    forged = old[:2] + fresh[2:4] + old[4:]
    assert verp.decode(forged, cfg, NOW).reason == "bad-tag"


def test_expired_stamp(cfg, ring):
    t = token(cfg, ring, now=NOW - 31 * DAY)
    r = verp.decode(t, cfg, NOW)
    assert (r.verified, r.reason, r.sender) == (False, "expired", "news@corp.example")
    assert verp.decode(token(cfg, ring, now=NOW - 30 * DAY), cfg, NOW).verified


def test_expiry_follows_max_age_days(key_file, ring):
    cfg = make_settings(key_file, max_age_days=3)
    assert verp.decode(token(cfg, ring, now=NOW - 4 * DAY), cfg, NOW).reason == "expired"


def test_one_day_of_clock_skew_is_tolerated(cfg, ring):
    assert verp.decode(token(cfg, ring, now=NOW + DAY), cfg, NOW).verified
    assert verp.decode(token(cfg, ring, now=NOW + 2 * DAY), cfg, NOW).reason == "expired"
    assert verp.decode(token(cfg, ring, now=NOW + 20 * DAY), cfg, NOW).reason == "expired"


@pytest.mark.parametrize("days", [1024, 1030, 1054, 2048, 5000])
def test_expiry_does_not_wrap(cfg, ring, days):
    """Issue 13, item 4: the 2-character stamp repeats every 1,024 days; the tag covers
    the full day, so a token 1,024-1,054 days old (whose stamp reads 0-30 days) is not
    fresh again."""
    r = verp.decode(token(cfg, ring, now=NOW - days * DAY), cfg, NOW)
    assert not r.verified
    assert r.reason == ("expired" if days < 2048 else "bad-tag")
    assert verp.decode(token(cfg, ring, now=NOW - 1000 * DAY), cfg, NOW).reason == "expired"


def legacy_token(ring, recipient, sender, now):
    """A token as bounce-handler signed them before the tag covered the full day:
    HMAC over ``K SS BODY`` (the stamp alone), made here with the key ring directly."""
    body = verp.encode_field(sender, last=False) + "==" + verp.encode_field(recipient)
    stamp = verp._stamp(int(now // DAY))
    return "." + "a" + stamp + verp._tag(ring, "a", "a" + stamp + body) + body


LEGACY_DAY = (verp.LEGACY_FIRST_DAY + 10) * DAY  # a day when old-format tokens existed


def test_tokens_signed_before_the_upgrade_still_verify(cfg, ring):
    """The transition: a week of bounces for mail signed in the old format stays verified."""
    for age in (0, 1, 7, 30):
        t = legacy_token(ring, "alice@example.com", "news@corp.example", LEGACY_DAY - age * DAY)
        r = verp.decode(t, cfg, LEGACY_DAY)
        assert (r.verified, r.reason, r.recipient) == (True, None, "alice@example.com"), age
    old = legacy_token(ring, "alice@example.com", "news@corp.example", LEGACY_DAY - 31 * DAY)
    assert verp.decode(old, cfg, LEGACY_DAY).reason == "expired"


@pytest.mark.parametrize("days", [1024, 1030, 1054])
def test_old_format_tokens_cannot_come_back_after_1024_days(cfg, ring, days):
    """The old format wrapped; its tokens are accepted only for issue days before its
    first possible wrap, so a replay 1,024+ days later is expired, not fresh."""
    t = legacy_token(ring, "alice@example.com", "news@corp.example", LEGACY_DAY)
    later = LEGACY_DAY + days * DAY
    r = verp.decode(t, cfg, later)
    assert (r.verified, r.reason) == (False, "expired")


def test_new_tokens_do_not_verify_as_old_ones(cfg, ring):
    # Domain separation: the tag of one format is never the tag of the other.
    t = token(cfg, ring, now=LEGACY_DAY)
    body = t[10:]
    assert t[4:10] != verp._tag(ring, "a", "a" + t[2:4] + body)


def test_unknown_key_id(cfg, ring):
    t = token(cfg, ring)
    forged = t[:1] + "z" + t[2:]
    r = verp.decode(forged, cfg, NOW)
    assert (r.verified, r.reason) == (False, "unknown-key")


def test_retired_key_is_unknown_but_rotated_key_verifies(tmp_path, ring):
    cfg_old = make_settings(tmp_path / "old.keys")
    (tmp_path / "old.keys").write_text(KEY_A + "\n")
    t = ext_of(verp.encode("a@b.example", "s", cfg_old, NOW), cfg_old)
    # Rotation: a new first key signs, the old one still verifies mail in flight.
    (tmp_path / "rot.keys").write_text("c " + "33" * 32 + "\n" + KEY_A + "\n")
    cfg_rot = make_settings(tmp_path / "rot.keys")
    assert verp.decode(t, cfg_rot, NOW).verified
    assert ext_of(verp.encode("a@b.example", "s", cfg_rot, NOW), cfg_rot).startswith(".c")
    (tmp_path / "new.keys").write_text("c " + "33" * 32 + "\n")
    cfg_new = make_settings(tmp_path / "new.keys")
    assert verp.decode(t, cfg_new, NOW).reason == "unknown-key"


@HYPO
@given(data=st.data())
def test_any_single_character_change_fails(cfg, ring, data):
    t = token(cfg, ring)
    pos = data.draw(st.integers(1, len(t) - 1))
    ch = data.draw(
        st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789=._-").filter(lambda c: c != t[pos])
    )
    r = verp.decode(t[:pos] + ch + t[pos + 1 :], cfg, NOW)
    assert not r.verified
    assert r.reason in ("bad-tag", "unknown-key", "malformed")


@pytest.mark.parametrize(
    "ext",
    [
        ".",
        ".a",
        ".aaaaaaaaa",
        ".aaa!aaaaaa==b",
        ".aaaaaaaaaa_",
        ".aaaaaaaaaa_8f",
        ".aaaaaaaaaa==",
        ".aaaaaaaaaa==x==",
        ".aaaaaaaaaax==_",
        ".aaaaaaaaaa__!!",
        ".a1aaaaaaaax",
    ],
)
def test_malformed_signed_tokens(cfg, ext):
    r = verp.decode(ext, cfg, NOW)
    assert (r.verified, r.reason, r.sender, r.recipient) == (False, "malformed", None, None)


# -- XVERP and the other forms ----------------------------------------------------------


def test_xverp_is_unsigned(cfg):
    r = verp.decode("alice=example.com", cfg, NOW)
    assert r.as_dict() == {
        "token": "alice=example.com",
        "recipient": "alice@example.com",
        "sender": None,
        "verified": False,
        "reason": "unsigned",
    }


def test_xverp_local_part_with_equals_splits_at_last(cfg):
    assert verp.decode("a=b=example.com", cfg, NOW).recipient == "a=b@example.com"


def test_xverp_honours_verp_delimiters(key_file):
    cfg = make_settings(key_file, verp_delimiters="-+")
    assert verp.decode("alice+example.com", cfg, NOW).recipient == "alice@example.com"


@pytest.mark.parametrize("ext", ["justtext", "=example.com", "alice="])
def test_not_a_token(cfg, ext):
    assert verp.decode(ext, cfg, NOW).reason == "malformed"


@pytest.mark.parametrize("ext", [None, ""])
def test_no_token(cfg, ext):
    r = verp.decode(ext, cfg, NOW)
    assert (r.token, r.verified, r.reason) == (ext, False, "no-token")


def test_per_sender_token_with_xverp_appended(cfg, ring):
    full = verp.encode(None, "news@corp.example", cfg, NOW, key=ring)
    ext = ext_of(full, cfg) + "+Alice=Example.com"  # what Postfix's XVERP appends
    r = verp.decode(ext, cfg, NOW)
    assert (r.sender, r.recipient, r.verified) == ("news@corp.example", "Alice@Example.com", True)
    forged = ext.replace("news=", "boss=")
    assert verp.decode(forged, cfg, NOW).reason == "bad-tag"


def test_unsigned_paths_never_read_the_key_file(tmp_path):
    cfg = make_settings(tmp_path / "missing.keys")
    assert verp.decode("alice=example.com", cfg, NOW).reason == "unsigned"
    assert verp.decode(None, cfg, NOW).reason == "no-token"
    with pytest.raises(verp.VerpKeyError, match="missing.keys does not exist"):
        verp.decode(".aaaaaaaaaax", cfg, NOW)


def test_result_is_frozen(cfg):
    r = verp.decode("a=b.c", cfg, NOW)
    with pytest.raises(AttributeError):
        r.verified = True


def test_split_address(cfg):
    assert verp.split_address("<bounces+abc@relay.example>", cfg) == "abc"
    assert verp.split_address("Bounces+ABC@relay.example", cfg) == "ABC"
    assert verp.split_address("bounces@relay.example", cfg) is None
    with pytest.raises(verp.VerpError):
        verp.split_address("alice@relay.example", cfg)


def test_is_bounce_address(cfg):
    assert verp.is_bounce_address("bounces@relay.example", cfg)
    assert verp.is_bounce_address("BOUNCES+x@Relay.Example", cfg)
    assert not verp.is_bounce_address("bounces@elsewhere.example", cfg)
    assert not verp.is_bounce_address("bouncesx@relay.example", cfg)


@pytest.mark.parametrize(
    "extension",
    ["alice=example.com\nX-Injected: yes", "al\x1bice=example.com", "alice=exa mple.com",
     "alice\r=example.com"],
)
def test_crafted_xverp_with_control_characters_is_malformed(cfg, extension):
    r = verp.decode(extension, cfg, NOW)
    assert (r.recipient, r.verified, r.reason) == (None, False, "malformed")


def test_plain_xverp_still_decodes(cfg):
    r = verp.decode("alice+tag=example.com", cfg, NOW)
    assert (r.recipient, r.verified, r.reason) == ("alice+tag@example.com", False, "unsigned")
