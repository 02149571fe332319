"""Last resort: flufl.bounce's detectors, for bounces none of our modules recognised.

flufl.bounce (Mailman's) has a long tail of 2000s-era formats.  It needs the ``email``
package (~22 ms) and its own import, so it is loaded lazily, only for a message that looks
like a bounce (a system sender, a failure subject or a report) yet matched nothing else.
It returns bare addresses split into permanent and temporary: no status, no diagnostic.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, notice_like, rcpt
from bounce_handler.parse.mime import Part

# How much of a message flufl.bounce sees (its detectors are line-by-line regex scans).
MAX_FLUFL_BYTES = 256 * 1024


MAX_BYTES = 256 * 1024
MAX_DELIMITERS = 400
MAX_LINES = 5000


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
        if (raw is None or len(raw) > MAX_BYTES or raw.count(b"\n--") > MAX_DELIMITERS
                or raw.count(b"\n") > MAX_LINES):
            # flufl's walk over email.message is quadratic in the number of parts (50,000
            # empty parts took minutes) and tries its patterns on every line: big,
            # part-heavy or line-heavy messages are not worth it.
            return None
        if len(raw) > MAX_FLUFL_BYTES:
            # flufl's simplematch runs ~50 regexes over every body line: a 9 MB part of
            # never-ending base64 took 5-7 s here (tests/hostile, "endless-base64").
            # The notice text it looks for is at the top of a bounce.
            raw = raw[: raw.rfind(b"\n", 0, MAX_FLUFL_BYTES) + 1 or MAX_FLUFL_BYTES]
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
