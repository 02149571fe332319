"""Last resort: flufl.bounce's detectors, for bounces none of our modules recognised.

flufl.bounce (Mailman's) has a long tail of 2000s-era formats.  It needs the ``email``
package (~22 ms) and its own import, so it is loaded lazily, only for a message that looks
like a bounce (a system sender, a failure subject or a report) yet matched nothing else.
It returns bare addresses split into permanent and temporary: no status, no diagnostic.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, notice_like, rcpt
from bounce_handler.parse.mime import Part, normalize

# How much of a message flufl.bounce sees: its detectors run ~100 regexes over every line,
# many of them super-linear in the line's length (``(?P<reply>please reply to)?.*<([^>]*)>``
# took minutes on one 4 KB line, tests/hostile/test_adversarial.py) and each line costs
# ~0.25 ms even when short.  So flufl reads the first MAX_LINES lines, each cut at MAX_LINE
# bytes: ~0.1 s at worst.  What it still recognises (2000s-era formats that name the
# failed address near the top, in lines shorter than that) it finds there.
MAX_LINES = 400
MAX_LINE = 200
MAX_DELIMITERS = 400


def flufl_view(raw: bytes) -> bytes:
    """The first MAX_LINES lines of ``raw`` (LF line ends), each cut at MAX_LINE bytes."""
    raw = normalize(raw)
    end = -1
    for _ in range(MAX_LINES):
        end = raw.find(b"\n", end + 1)
        if end < 0:
            break
    head = raw if end < 0 else raw[: end + 1]
    if len(head) <= MAX_LINE:
        return head
    return b"\n".join(line[:MAX_LINE] for line in head.split(b"\n"))


class FluflFallback:
    """flufl.bounce ``all_failures`` over the message re-parsed by the email package."""

    name = "flufl"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Only bounce-looking messages pay for the import."""
        return notice_like(s)

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Permanent failures as failed, temporary as delayed; None when flufl finds none."""
        try:
            import email
            import logging

            from flufl.bounce import all_failures
        except ImportError:
            return None
        # flufl logs each crashing detector with a traceback; with no handler configured
        # that lands on stderr, which pipe(8) would copy into Postfix's logs.
        log = logging.getLogger("flufl.bounce")
        if not log.handlers:
            log.addHandler(logging.NullHandler())
            log.propagate = False
        raw = getattr(s, "raw", None)
        if raw is None:
            return None
        raw = flufl_view(raw)
        if raw.count(b"\n--") > MAX_DELIMITERS:
            # flufl's walk over email.message is quadratic in the number of parts (50,000
            # empty parts took minutes).
            return None
        try:
            temp, perm = all_failures(email.message_from_bytes(raw))
        except Exception:  # flufl's detectors raise on odd input; "not recognised" then
            return None
        out = []
        for a in sorted(perm):
            out.append(rcpt(a.decode("utf-8", "replace")))
        for a in sorted(temp - perm):
            out.append(rcpt(a.decode("utf-8", "replace"), action="delayed"))
        return Hit(out) if out else None


DETECTOR = FluflFallback()
