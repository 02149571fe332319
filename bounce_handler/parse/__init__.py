r"""The bounce parser: ``parse(raw) -> ParseResult``, the one path for pipe, LMTP and CLI.

    >>> from bounce_handler.parse import parse
    >>> parse(b"Subject: hi\n\nhello").kind
    'unknown'

The message is walked once by the lean MIME reader (``mime``), a few headers and the
notice text are sniffed once (``base.Sniff``), then the ordered registry
(``registry.NAMES``, modules loaded on first use) is asked in turn: each detector's
cheap ``match`` first, its
``scan`` only when that passes.  The first detector that returns a ``Hit`` decides; its
recipients are classified (``bounce_handler.classify``) and the original message's facts
(sender, Message-ID, From, Subject, SASL login) are read from the returned copy.

``parse`` never raises: an internal error becomes kind "unknown" with ``error`` set.
Hot path: imports only binascii and codecs (through ``mime``) at module level; a standard
DSN never imports ``re`` (the patterns it needs are ``scan``'s hand-written scanners).
"""

from __future__ import annotations

# Module, not name: classify imports parse.lazyre, so either may be imported first.
from bounce_handler import classify as _classify
from bounce_handler.parse.base import (
    MAX_FIELD,
    Sniff,
    clean_address,
    find_address,
    one_line,
    usable_address,
)
from bounce_handler.parse.mime import Part, decode_words, parse_message
from bounce_handler.parse.model import Original, ParseResult, Recipient
from bounce_handler.parse.registry import NAMES, detector
from bounce_handler.parse.scan import find_remote, find_sasl

__all__ = ["parse", "ParseResult", "Recipient", "Original"]

MAX_RECIPIENTS = 1000  # a notice listing more is an attack or a loop; keep the first ones


def parse(raw: bytes) -> ParseResult:
    """Everything the message says about failed, delayed or complained-about recipients."""
    try:
        return _parse(raw)
    except Exception as e:  # the contract: never raise; the caller records the error
        return ParseResult(kind="unknown", error=f"{type(e).__name__}: {e}"[:300])


def _parse(raw: bytes) -> ParseResult:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    msg = parse_message(raw)
    s = Sniff(msg, raw)
    for i in range(len(NAMES)):
        det = detector(i)
        if not det.match(s):
            continue
        hit = det.scan(msg, s)
        if hit is None:
            continue
        recipients = tuple(
            _classified(r, det.name, hit.kind)
            for r in hit.recipients[:MAX_RECIPIENTS]
            if _plausible(r.address)
        )
        if not hit.recipients and hit.kind is None:
            continue  # recognised nothing: let the next detector try
        # Recipients found but none plausible ("david...@gmail.com"): the format was
        # recognised, so the verdict stands (a bounce naming no usable address).
        mid = msg.get("message-id")
        return ParseResult(
            kind=hit.kind or _kind(recipients),
            recipients=recipients,
            original=_original(hit.original, hit.sender, recipients),
            detector=det.name,
            reporting_mta=hit.reporting_mta,
            arrival_date=hit.arrival_date,
            queue_id=hit.queue_id,
            message_id=one_line(mid[:MAX_FIELD], 998) if mid else None,
        )
    return ParseResult(kind="unknown")


def _plausible(address: str | None) -> bool:
    """Check that a failed address looks like one (``base.usable_address``)."""
    return usable_address(address)


def _classified(r: Recipient, detector: str, kind: str | None) -> Recipient:
    if kind == "complaint":
        return r.replace(reason="feedback", hard=None, detector=detector, action=None)
    diag = r.diagnostic
    v = _classify.decide(r.status, diag, r.action, r.reply_code, r.phase)
    remote = r.remote_mta
    if not remote and diag:
        remote = find_remote(diag)
    return r.replace(
        status=v.status, reason=v.reason, hard=v.hard, detector=detector,
        reply_code=v.reply_code, remote_mta=remote, action=v.action, phase=v.phase,
    )


def _kind(recipients: tuple) -> str:
    actions = {r.action for r in recipients}
    if "failed" in actions:
        return "bounce"
    if "delayed" in actions:
        return "delay"
    if actions and actions <= {"delivered", "relayed", "expanded"}:
        return "delivery"
    return "bounce"


def _original(part: Part | None, sender: str | None, recipients: tuple) -> Original:
    """Facts about the returned message (attached copy or headers)."""
    rcpt = next((r.original_address for r in recipients if r.original_address), None)
    source = "dsn" if sender else None
    if part is None:
        return Original(sender=sender, recipient=rcpt, sender_source=source)
    login = hop = None
    # Every value read here is cut at MAX_FIELD first, as Sniff's are: the scanners are
    # linear but walk each "<" or "(" in Python, and a returned copy's Return-Path of
    # 64 KB of "<>" cost 7x a plain copy's (issue 14); a real one is an address.
    for i, received in enumerate(part.get_all("received")):
        login = find_sasl(received[:MAX_FIELD])
        if login:
            hop = i
            break
    if sender is None:
        rp = (part.get("return-path") or "")[:MAX_FIELD]
        sender = clean_address(rp) if rp and rp.strip() != "<>" else None
        source = "copy" if sender else None
    frm = part.get("from")
    subject = part.get("subject")
    mid = part.get("message-id")
    return Original(
        sender=sender,
        # One line of at most 998 characters (RFC 5322 §2.1.1), as it is stored: a hostile
        # copy's 1 MiB Message-ID would otherwise reach `bounces parse` output whole.
        message_id=one_line(mid[:MAX_FIELD], 998) if mid else None,
        # Cut before decoding too (RFC 2047 words of a 256 KB header: 66 ms, tests/hostile).
        from_=one_line(decode_words(frm[:MAX_FIELD]), 300) if frm else None,
        subject=one_line(decode_words(subject[:MAX_FIELD]), 300) if subject else None,
        sasl_login=login,
        recipient=rcpt,
        sender_source=source,
        sasl_hop=hop,
    )


# find_address is re-exported for callers that need the same address rule (CLI, intake).
find_address = find_address
