"""The ordered list of detectors: the one place that says who is asked, and in what order.

Standards first (they are exact), then vendor formats (each recognised by its own
wording), then heuristics, then flufl.bounce for what nothing else recognises.  Every
detector's ``match`` is a cheap header/substring test, so a message only pays for the
full ``scan`` of the few formats it can be.

Modules are imported on first use, in this order: the pipe handles one message per process,
and a DSN (most bounces today) stops at the second entry, so it never loads the twenty
vendor modules behind it.  ``tests/parse/test_registry.py`` checks that every entry meets
``protocol.Detector`` and that names are unique.
"""

from __future__ import annotations

NAMES = (
    # Standards: RFC 6533 before RFC 3464 (same fields, more specific), RFC 5965 ARF,
    # Amazon SES's JSON notifications, RFC 8098 disposition notifications, then RFC 3834
    # auto-replies, which must never reach the bounce heuristics below.
    "rfc6533",
    "rfc3464",
    "arf",
    "ses",
    "mdn",
    "autoreply",
    # MTAs and providers, by their own wording.
    "googlegroups",
    "postfix_transcript",
    "postfix",
    "zoho",
    "exim",
    "sendmail",
    "yahoo",
    "qmail",
    "courier",
    "opensmtpd",
    "dma",
    "exchange",
    "office365",
    "outlook",
    "gmail",
    "aol",
    "domino",
    "groupwise",
    "phquery",
    "james",
    "mimecast",
    "kddi",
    "fml",
    "foreign",
    # Heuristics, then the lazy flufl.bounce fallback.  A report pasted into a text
    # notice and X-Failed-Recipients first: a notice naming its failed addresses only
    # there (Google Groups) greets its reader by address, which "simple" would take.
    "forwarded",
    "xfailed",
    "simple",
    "fallback",
)

# One slot per name, filled on first use (idempotent: the LMTP daemon may parse from
# several threads, and the import lock makes a second import of a module a no-op).
_loaded: list = [None] * len(NAMES)


def detector(i: int):
    """Return the i-th detector, importing its module the first time it is needed."""
    d = _loaded[i]
    if d is None:
        module = __import__(f"bounce_handler.parse.{NAMES[i]}", fromlist=["DETECTOR"])
        d = _loaded[i] = module.DETECTOR
    return d


def detectors():
    """Every detector in order (imports them all: for tests and documentation)."""
    return [detector(i) for i in range(len(NAMES))]
