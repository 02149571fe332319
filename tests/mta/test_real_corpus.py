"""The real MTAs' notices kept in tests/data/real/, read without starting any MTA.

Captured by tests/mta/capture.py from the labs test_real_mtas.py runs live (Postfix 3.7,
Exim 4.96, OpenSMTPD 6.8, Sendmail 8.17, Courier 1.0.16, DMA 0.13 on Debian 12), named
``<mta>_<case>.eml`` (``_2``, ``_3`` for more final notices, ``_delay`` for a delay
warning); the expectations are tests/mta/expectations.py, the same the live tests use.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from bounce_handler.parse import parse
from tests.mta.expectations import (
    FAILURE_CASES,
    KNOWN_DEFECTS,
    MTAS,
    UNSUPPORTED,
    WARNING_REASON,
    final,
    is_warning,
    must_warn,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "real"
FILES = sorted(DATA.glob("*.eml"))


def _key(path: Path) -> tuple[str, str, str]:
    """(mta, case, role) from ``<mta>_<case>[_2|_delay].eml``."""
    parts = path.stem.split("_")
    role = parts[2] if len(parts) > 2 else "final"
    return parts[0], parts[1], "delay" if role == "delay" else "final"


GROUPS: dict[tuple[str, str], list[Path]] = defaultdict(list)
for _p in FILES:
    _mta, _case, _role = _key(_p)
    if _role == "final":
        GROUPS[(_mta, _case)].append(_p)


def _rows(result):
    return [(r.address, r.status, r.reason, r.hard) for r in result.recipients]


def test_every_mta_and_case_is_kept():
    for mta in MTAS:
        for case in (*FAILURE_CASES, "success"):
            if (mta, case) in UNSUPPORTED:
                assert not GROUPS.get((mta, case)), f"{mta} cannot produce {case}"
                continue
            assert GROUPS.get((mta, case)), f"tests/data/real has no {mta}_{case}.eml"
    for mta in MTAS:
        for case in must_warn(mta):
            assert (DATA / f"{mta}_{case}_delay.eml").exists(), f"{mta}_{case}_delay.eml"


def test_file_roles_match_the_notices():
    # The file name's role and the notice's own subject agree (a warning is never filed
    # as a final notice, or the other way round).
    for p in FILES:
        mta, _case, role = _key(p)
        assert is_warning(mta, p.read_bytes()) == (role == "delay"), p.name


def _params():
    out = []
    for mta in MTAS:
        for case in FAILURE_CASES:
            marks = []
            if (mta, case) in KNOWN_DEFECTS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[(mta, case)]))
            out.append(pytest.param(mta, case, id=f"{mta}-{case}", marks=marks))
    return out


@pytest.mark.parametrize("mta,case", _params())
@pytest.mark.parametrize("ending", ["crlf", "lf"])
def test_final_notice(mta, case, ending):
    got = []
    for p in GROUPS[(mta, case)]:
        raw = p.read_bytes()
        if ending == "lf":
            raw = raw.replace(b"\r\n", b"\n")
        result = parse(raw)
        assert result.error is None
        assert result.kind == "bounce", (p.name, _rows(result))
        got += _rows(result)
    assert sorted(got) == sorted(final(mta, case))


@pytest.mark.parametrize("path", [p for p in FILES if _key(p)[2] == "delay"],
                         ids=lambda p: p.stem)
def test_delay_warning(path):
    result = parse(path.read_bytes())
    assert result.kind == "delay"
    assert result.recipients
    assert all(r.hard is None and r.action == "delayed" for r in result.recipients)
    case = _key(path)[1]
    if case in WARNING_REASON:
        assert {r.reason for r in result.recipients} == {WARNING_REASON[case]}


@pytest.mark.parametrize("mta", [m for m in MTAS if (m, "success") not in UNSUPPORTED])
def test_success_notice(mta):
    [p] = GROUPS[(mta, "success")]
    result = parse(p.read_bytes())
    assert result.kind == "delivery"
    assert [(r.address, r.hard) for r in result.recipients] == [("ok@rcpt.test", None)]


def _without_dsn_part(raw: bytes) -> bytes:
    """The notice with its message/delivery-status part cut out (Courier's boundary)."""
    parts = raw.split(b"--=_courier_0")
    return b"--=_courier_0".join(
        p for p in parts if b"Content-Type: message/delivery-status" not in p)


@pytest.mark.parametrize("path", sorted(DATA.glob("courier_*.eml")), ids=lambda p: p.stem)
def test_courier_text_alone_reads_the_same(path):
    # A relay that drops the DSN part (or a client that shows only the text) leaves
    # Courier's own text: bounce_handler/parse/courier.py must read it as the DSN says --
    # a NOTIFY=SUCCESS receipt ("MESSAGE DELIVERED TO A MAIL GATEWAY") included, which
    # the "simple" heuristics took for a failure.  The status is the DSN's own or inferred.
    raw = path.read_bytes()
    cut = _without_dsn_part(raw)
    assert cut != raw
    full, text = parse(raw), parse(cut)
    assert text.kind == full.kind
    assert [r.detector for r in text.recipients] == ["courier"] * len(full.recipients)
    assert sorted((r.address, r.action, r.reason, r.hard) for r in text.recipients) == \
        sorted((r.address, r.action, r.reason, r.hard) for r in full.recipients)
