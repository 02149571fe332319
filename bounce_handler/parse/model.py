"""The frozen result records every detector returns.

One flat record per failed (or delayed, or complained-about) recipient, in the spirit of
Sisimai's ``Fact``; one record per message around them.  Plain ``__slots__`` classes rather
than dataclasses: this module is imported by the pipe's hot path, and ``import dataclasses``
alone costs ~14 ms in a fresh process on our relays (more than the whole parse).

``reason`` and ``hard`` are never decided by a detector: detectors fill in what the message
*says* (address, action, status, diagnostic, remote MTA) and ``classify.classify`` decides
what it *means* (see ``bounce_handler.classify``).
"""

from __future__ import annotations

# The kinds a message can be, in the order the `bounces parse` documentation lists them.
KINDS = ("bounce", "delay", "complaint", "autoreply", "delivery", "unknown")


class _Record:
    """Immutable record with keyword construction, equality and ``as_dict``."""

    __slots__ = ()
    _defaults: dict = {}

    def __init__(self, **values: object) -> None:
        for name in self.__slots__:
            if name in values:
                v = values.pop(name)
            else:
                v = self._defaults.get(name)
            object.__setattr__(self, name, v)
        if values:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(values)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def replace(self, **changes: object):
        """Return a copy with some fields changed (records are never mutated)."""
        values = {n: getattr(self, n) for n in self.__slots__}
        values.update(changes)
        return type(self)(**values)

    def as_dict(self) -> dict:
        """Plain dict, nested records included (for JSON)."""
        out = {}
        for n in self.__slots__:
            v = getattr(self, n)
            if isinstance(v, _Record):
                v = v.as_dict()
            elif isinstance(v, tuple):
                v = [x.as_dict() if isinstance(x, _Record) else x for x in v]
            out[n] = v
        return out

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{n}={getattr(self, n)!r}" for n in self.__slots__ if getattr(self, n) is not None
        )
        return f"{type(self).__name__}({inner})"


class Recipient(_Record):
    """What one message says about one recipient.

    address           the failed recipient: the DSN's Final-Recipient (who the reporting
                      MTA could not deliver to, after any alias or list expansion), else
                      its Original-Recipient, else X-Failed-Recipients or what the text
                      names; UTF-8 kept (RFC 6533); never lower-cased here
    original_address  Original-Recipient (ORCPT, the address the sender wrote), when the
                      DSN carries it
    final_address     Final-Recipient, when it is not ``address`` (unusable as one: a
                      pipe "|/usr/bin/filter", a source route "@relay:user@host")
    action            RFC 3464 Action: failed, delayed, delivered, relayed, expanded
    status            RFC 3463 enhanced status "X.Y.Z" (from the DSN, or inferred)
    reply_code        the SMTP reply code ("550") when one is seen
    phase             the SMTP phase the reply answered (scan.PHASES: connect, helo, mail,
                      rcpt, data) when the notice says; set by detectors or classify
    reason            Sisimai vocabulary (classify.REASONS); set by classify only
    hard              True: the address itself is permanently bad; False: any other
                      failure; None: not a failure (delay, delivery, complaint)
    diagnostic        Diagnostic-Code or the MTA's text, one line, bounded
    remote_mta        the host that answered, when known
    detector          name of the module that found it
    """

    __slots__ = (
        "address",
        "original_address",
        "action",
        "status",
        "reply_code",
        "reason",
        "hard",
        "diagnostic",
        "remote_mta",
        "detector",
        "final_address",
        "phase",
    )
    _defaults = {"action": "failed"}


class Original(_Record):
    """What we know of the message that bounced (from the attached copy or headers).

    sender       the original envelope sender (X-Postfix-Sender, Return-Path of the copy)
    message_id   the original Message-ID
    from_        its From: header (``from`` in JSON)
    subject      its Subject: (RFC 2047 decoded)
    sasl_login   the SASL login, from a Received: "(Authenticated sender: NAME)" clause
    recipient    the original envelope recipient, when the notice says (Postfix notices)
    """

    __slots__ = ("sender", "message_id", "from_", "subject", "sasl_login", "recipient")

    def as_dict(self) -> dict:
        """As the JSON shape names it: ``from``, not ``from_``."""
        d = _Record.as_dict(self)
        d["from"] = d.pop("from_")
        return d


class ParseResult(_Record):
    """Everything parse() learnt from one message.

    kind            one of KINDS
    recipients      tuple of Recipient (empty for autoreply/unknown)
    original        Original (never None; its fields may all be None)
    detector        the module that recognised the message ("" when none did)
    reporting_mta   Reporting-MTA of a DSN
    arrival_date    Arrival-Date of a DSN, as written
    error           why nothing could be understood (kind "unknown"), else None
    """

    __slots__ = (
        "kind",
        "recipients",
        "original",
        "detector",
        "reporting_mta",
        "arrival_date",
        "error",
    )
    _defaults = {"kind": "unknown", "recipients": (), "detector": ""}

    def __init__(self, **values: object) -> None:
        if values.get("original") is None:
            values["original"] = Original()
        _Record.__init__(self, **values)
