"""Hand-written scanners for the few patterns every standard DSN needs.

Importing ``re`` (with enum, functools, collections) costs ~4.5 ms of the pipe's ~25 ms;
a standard RFC 3464 notice only needs the matches below, so they are plain str code
with exactly the regex semantics noted on each (tests/parse/test_scanners.py compares
them with the regex on random input).  Every scanner is linear in its input: hostile
notices (tests/hostile) must not make them quadratic.
"""

from __future__ import annotations

_DIGITS = "0123456789"


# Folds of more than one blank whose blank run unfold drops, per text (a real header has
# tens; a Received chain of 50 hops folded "\n        by" a few hundred).
MAX_RUN_FOLDS = 2000


def unfold(text: str) -> str:
    r"""``re.sub(r"\n[ \t]+", " ", text)``: RFC 5322 §2.2.3 header unfolding.

    Exactly that for the first MAX_RUN_FOLDS folds; past them a fold's line break and first
    blank become one blank and the rest of its blanks stay ("\n   x" -> "   x"): the same
    words, and no Python per fold (64 KB of "\n  " folds in a Subject cost 5x the same
    Subject of prose, issue 14).
    """
    # Split at each line break that a blank follows (a tab turned into a space first: it
    # only ever follows a line break there), then drop the rest of each blank run: the
    # per-part work is one C call, so 10 MiB of folds stays a fraction of a second.
    if "\n\t" in text:
        text = text.replace("\n\t", "\n ")
    if "\n  " not in text and "\n \t" not in text:
        return text.replace("\n ", " ")  # every fold is one blank: no run to drop
    parts = text.split("\n ", MAX_RUN_FOLDS)
    if len(parts) == 1:
        return text
    # map() calls str.lstrip from C: no Python frame per fold.
    rest = list(map(str.lstrip, parts[1:], [" \t"] * (len(parts) - 1)))
    if len(parts) > MAX_RUN_FOLDS:
        rest[-1] = rest[-1].replace("\n ", " ")  # the folds past the bound, in one C call
    return " ".join([parts[0], *rest])


def first_lines(text, n: int):
    r"""The first ``n`` lines of text (str or bytes), without the line break after the last.

    Unchanged when it has fewer.  The bound on *lines* every line-by-line reader needs
    besides the one on characters: per line, the readers cost a little Python (a split,
    a strip, a test), so 64 KB of line breaks did the work of 64,000 lines where the same
    64 KB of prose is 900 (issue 14's adversarial table: the floods of newlines, "-\n",
    "R\n" ran 10-16x a plain message's time).  Cutting must not cost a line each either
    (``split(nl, n)`` makes n objects: 1.5 ms for 50,000): the span holding the n-th line
    break is halved by counting in C, ~2 passes over the text, then found in <= 64 chars.
    """
    nl = "\n" if isinstance(text, str) else b"\n"
    if n <= 0:
        return text[:0]
    if text.count(nl) < n:
        return text
    lo, hi, seen = 0, len(text), 0  # seen: line breaks in text[:lo]; the n-th is in [lo, hi)
    while hi - lo > 64:
        mid = (lo + hi) // 2
        c = text.count(nl, lo, mid)
        if seen + c >= n:
            hi = mid
        else:
            lo, seen = mid, seen + c
    i = lo - 1
    for _ in range(n - seen):
        i = text.find(nl, i + 1)
    return text[:i]


def split_blank(text: str) -> list:
    r"""``re.split(r"\n[ \t]*\n", text)``: blank-line separated blocks (RFC 3464 §2.1)."""
    if " \n" not in text and "\t\n" not in text:
        # No line ends in a blank, so every separator is "\n\n" (both splits are
        # leftmost and non-overlapping): str.split does it without a loop per line.
        return text.split("\n\n")
    lines = text.split("\n")
    # The same lines without their blanks: "" marks a blank line, found by list.index
    # (C) so that the loop below runs once per separator, not once per line.
    marks = text.replace(" ", "").replace("\t", "").split("\n")
    last = len(lines) - 1
    out = []
    start = 0
    i = 1
    while True:
        # A separator is the newline before a blank line plus the one after it; the
        # first line of a block is never one (it follows a separator's second newline).
        try:
            i = marks.index("", i, last)
        except ValueError:
            break
        out.append("\n".join(lines[start:i]))
        start = i + 1
        i = start + 1
    out.append("\n".join(lines[start:]))
    return out


_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*_.-")


def params(text: str) -> list:
    r"""``re.findall(r';\s*([A-Za-z0-9*_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)', text)``.

    Content-Type parameters (RFC 2045 §5.1), quoted values keeping their quotes and
    backslash escapes, as (name, value) pairs.
    """
    out = []
    n = len(text)
    pos = 0
    while True:
        i = text.find(";", pos)
        if i < 0:
            return out
        j = i + 1
        while j < n and text[j].isspace():
            j += 1
        k = j
        while k < n and text[k] in _NAME:
            k += 1
        if k == j:
            pos = i + 1
            continue
        name = text[j:k]
        while k < n and text[k].isspace():
            k += 1
        if k >= n or text[k] != "=":
            pos = i + 1
            continue
        k += 1
        while k < n and text[k].isspace():
            k += 1
        end = _quoted_end(text, k) if k < n and text[k] == '"' else -1
        if end < 0:
            # Unquoted (or an unterminated quote): up to ";" or a blank; text[k] is no blank.
            semi = text.find(";", k)
            run = text[k : semi if semi >= 0 else n]
            end = k + (len(run.split(None, 1)[0]) if run else 0)
        out.append((name, text[k:end]))
        pos = end


def _quoted_end(text: str, k: int) -> int:
    """End of the quoted string opening at k, or -1 (a backslash escapes any char but LF)."""
    n = len(text)
    j = k + 1
    q = text.find('"', j)
    while True:
        b = text.find("\\", j, q if q >= 0 else n)
        if b < 0:
            return q + 1 if q >= 0 else -1
        if b + 1 >= n or text[b + 1] == "\n":
            return -1
        j = b + 2
        if 0 <= q < j:  # that quote was escaped: look for the next one
            q = text.find('"', j)


def find_angle(text: str) -> str | None:
    r"""Group 1 of ``re.search(r"<([^<>\s]{1,200}@[^<>\s]{1,255})>", text)``."""
    # Only the last "<" before a ">" can open a match ending there (no "<" or ">" inside),
    # so each ">" is tried once, in order: linear however many "<" stand unclosed (a "<"
    # flood made the per-"<" look-ahead cost 1.4 s at 64 KB, tests/hostile).
    i = text.find("<")
    while i >= 0:
        end = text.find(">", i + 1)
        if end < 0:
            return None
        k = text.rfind("<", i, end)
        # The group is 3 to 456 (200 + "@" + 255) characters, none blank.
        if 3 <= end - k - 1 <= 456:
            t = text[k + 1 : end]
            if t.split() == [t]:
                lo = max(1, len(t) - 256)
                hi = min(200, len(t) - 2)
                if lo <= hi and t.find("@", lo, hi + 1) >= 0:
                    return t
        i = text.find("<", end + 1)
    return None


def collapse_ws(text: str) -> str:
    r"""``re.sub(r"\s+", " ", text).strip()``."""
    return " ".join(text.split())


def find_status(text: str) -> str | None:
    r"""Group 0 of ``re.search(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])", text)``.

    An RFC 3463 status code not inside a longer dotted number (an IP address, a version).
    """
    span = status_span(text)
    return text[span[0] : span[1]] if span else None


def status_span(text: str, start: int = 0) -> tuple | None:
    """(start, end) of find_status's match in text[start:] (as ``re``'s ``search(text, start)``)."""
    n = len(text)
    j = text.find(".", start + 1)
    while j >= 0:
        i = j - 1
        if text[i] in "245" and (i == 0 or not (text[i - 1].isdecimal() or text[i - 1] == ".")):
            a = j + 1
            b = a
            while b < n and b - a < 4 and text[b].isdecimal():
                b += 1
            if 1 <= b - a <= 3 and b < n and text[b] == ".":
                c = b + 1
                d = c
                while d < n and d - c < 4 and text[d].isdecimal():
                    d += 1
                if 1 <= d - c <= 3 and (d == n or text[d] != "."):
                    return i, d
        j = text.find(".", j + 1)
    return None


def _code_spans(text: str):
    r"""(start, end) of each reply code candidate ``[245]\d\d``, left to right.

    Not a part of a number, a status or a "#5.1.1" (what stands before it decides).

    What may stand *after* it is the caller's rule: find_reply and find_reply_code differ.
    """
    for i in range(len(text) - 2):
        if (
            text[i] in "245"
            and text[i + 1] in _DIGITS
            and text[i + 2] in _DIGITS
            and (i == 0 or not (text[i - 1].isdecimal() or text[i - 1] in ".#-"))
        ):
            yield i, i + 3


def find_reply(text: str) -> str | None:
    r"""Group 1 of ``re.search(r"(?<![\d.#-])([245][0-9][0-9])(?:[ -]|$)", text)``.

    An RFC 5321 reply code standing on its own ("550 ", "550-"), not a part of a number.
    """
    n = len(text)
    for i, e in _code_spans(text):
        if e == n or text[e] in " -" or (e == n - 1 and text[e] == "\n"):
            return text[i:e]
    return None


# What stands right before a reply code that is not at the start of a diagnostic:
# "host x[ip] said: 550 …", "failed with: 550 …", "<a@b> 550 …", "<<< 550 …".
# "(expanded from: a@b) 554 Too many hops" (Sendmail); not "; ": "X-Unix; 255" is a
# program's exit status, not a reply.
_REPLY_LEAD = (": ", "> ", "<<< ", "said ", ") ")


def find_reply_code(text: str) -> str | None:
    """The reply code (RFC 5321 §4.2) a diagnostic reports, wherever it stands.

    A find_reply candidate counts at the very start (a comma may follow it there), when an
    enhanced status follows it ("… [192.0.2.1]: 554 5.7.0 …") or after what introduces a
    reply ("said: 550", "failed with: 550", "<a@b> 550", "<<< 550", "(...) 554"); a number
    in prose ("in 840 minutes") does not.  Linear: one pass, constant work per position.
    """
    n = len(text)
    for i, e in _code_spans(text):
        if i == 0 and (e == n or text[e] in " -\n,"):
            return text[:3]  # Zoho writes "421, ERROR_CODE :, Host not reachable."
        if e != n and text[e] not in " -" and text[e] != "\n":
            continue
        # An enhanced status right after it (the slice keeps this check constant-time).
        span = status_span(text[e + 1 : e + 13]) if e < n else None
        if span is not None and span[0] == 0:
            return text[i:e]
        for lead in _REPLY_LEAD:
            if i >= len(lead) and text.startswith(lead, i - len(lead)):
                return text[i:e]
    return None


def join_reply_lines(text: str) -> str:
    """A multi-line SMTP reply read as one (RFC 5321 §4.2.1), in a whitespace-collapsed text.

    "550-5.7.1 [192.0.2.1] Messages with multiple 550 5.7.1 addresses in From: header are
    not accepted." (Gmail) becomes "550-5.7.1 [192.0.2.1] Messages with multiple addresses
    in From: header are not accepted.": the code (and status) repeated at the start of each
    further line is dropped, so words split over lines are found.  Linear.
    """
    k = text.find("-")
    while k >= 0:
        i = k - 3
        if (
            i >= 0
            and text[i] in "245"
            and text[i + 1] in _DIGITS
            and text[i + 2] in _DIGITS
            and (i == 0 or not (text[i - 1].isdecimal() or text[i - 1] in ".#-"))
        ):
            break
        k = text.find("-", k + 1)
    if k < 0:
        return text
    code = text[k - 3 : k]
    span = status_span(text[k + 1 : k + 13])
    head, rest = text[: k + 1], text[k + 1 :]
    if span is not None and span[0] == 0:
        status = text[k + 1 : k + 1 + span[1]]
        for line in (f" {code}-{status} ", f" {code} {status} "):
            rest = rest.replace(line, " ")
    else:
        for line in (f" {code}-", f" {code} "):
            rest = rest.replace(line, " ")
    return head + rest


_SASL_WORDS = "authenticated sender:"
# re.IGNORECASE also matches these to "i" and "s" (Unicode simple case folding).
_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s"}


def find_sasl(text: str) -> str | None:
    r"""Group 1 of ``re.search(r"\(Authenticated sender:\s*([^)\s]+)\s*\)", text, re.I)``.

    The login Postfix writes into Received: when smtpd_sasl_authenticated_header is on.
    """
    n = len(text)
    w = len(_SASL_WORDS)
    i = text.find("(")
    while i >= 0:
        # Linear: the literal holds no "(" and its login run no blank, so the runs scanned
        # for two candidates that pass the literal check never overlap.
        if text[i + 1 : i + 1 + w].translate(_FOLD).lower() == _SASL_WORDS:
            j = i + 1 + w
            while j < n and text[j].isspace():
                j += 1
            k = j
            while k < n and text[k] != ")" and not text[k].isspace():
                k += 1
            if k > j:
                e = k
                while e < n and text[e].isspace():
                    e += 1
                if e < n and text[e] == ")":
                    return text[j:k]
        i = text.find("(", i + 1)
    return None


_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_HOST_CHARS = _ALNUM | frozenset(".-")


def find_remote(text: str) -> str | None:
    r"""Group 1 of ``re.search(PATTERN, text)``.

    PATTERN = ``\bhost\s+([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})\.?\s*\[``

    The remote MTA in Postfix's "host mx.example.net[192.0.2.1] said: ..." diagnostic.
    """
    n = len(text)
    i = text.find("host")
    while i >= 0:
        prev = text[i - 1] if i else ""
        if not prev or not (prev.isalnum() or prev == "_"):
            j = i + 4
            while j < n and text[j].isspace():
                j += 1
            if j > i + 4 and j < n and text[j] in _ALNUM:
                r = j
                while r < n and text[r] in _HOST_CHARS:
                    r += 1
                got = _host_then_bracket(text, j, r)
                if got is None and text[r - 1] == ".":
                    got = _host_then_bracket(text, j, r - 1, dot=True)
                if got is not None:
                    return got
        i = text.find("host", i + 1)
    return None


def _host_then_bracket(text: str, j: int, e: int, dot: bool = False) -> str | None:
    """text[j:e] if it ends in "." + two or more letters and is followed by [.] blanks "["."""
    host = text[j:e]
    d = host.rfind(".")
    tld = host[d + 1 :]
    if d < 1 or len(tld) < 2 or not tld.isascii() or not tld.isalpha():
        return None
    k = e + 1 if dot else e
    n = len(text)
    while k < n and text[k].isspace():
        k += 1
    return host if k < n and text[k] == "[" else None


def odd_dots(address: str) -> bool:
    r"""``re.search(r"^\.|\.\.|\.@", address)``: a leading, doubled or final local-part dot."""
    return address.startswith(".") or ".." in address or ".@" in address


def _wordchar(c: str) -> bool:
    return c.isalnum() or c == "_"  # re's Unicode \w


class Word:
    r"""``re.compile(r"\bWORD\b")`` for a WORD of word characters; only ``search`` is offered.

    classify's wording table tests these on most diagnostics ("spf", "spam", "rbl"):
    a pattern object there would import re for nearly every notice.
    """

    __slots__ = ("word",)

    def __init__(self, word: str) -> None:
        self.word = word

    def search(self, text: str) -> bool:
        """Whether the word occurs in text between non-word characters."""
        w = self.word
        n = len(w)
        i = text.find(w)
        while i >= 0:
            if (i == 0 or not _wordchar(text[i - 1])) and (
                i + n == len(text) or not _wordchar(text[i + n])
            ):
                return True
            i = text.find(w, i + 1)
        return False


class ClientHostRejected:
    r"""``re.compile(r"client host \S+ ?rejected")`` (Postfix "Client host [ip] rejected")."""

    __slots__ = ()

    def search(self, text: str) -> bool:
        """Whether the phrase occurs in text."""
        n = len(text)
        i = text.find("client host ")
        while i >= 0:
            j = i + 12
            e = j
            while e < n and not text[e].isspace():
                e += 1
            # \S+ backtracks: "rejected" may also end the blank-free run itself.
            if e > j and (text.find("rejected", j + 1, e) >= 0 or text.startswith(" rejected", e)):
                return True
            i = text.find("client host ", i + 1)
        return False


def join_encoded_words(value: str) -> str:
    r"""``re.sub(r"(\?=)[ \t]+(=\?)", r"\1\2", value)`` (RFC 2047 §6.2)."""
    out = []
    pos = 0
    n = len(value)
    i = value.find("?=")
    while i >= 0:
        j = i + 2
        while j < n and value[j] in " \t":
            j += 1
        if j > i + 2 and value.startswith("=?", j):
            out.append(value[pos : i + 2])
            pos = j
            i = value.find("?=", j + 2)
        else:
            i = value.find("?=", i + 1)
    out.append(value[pos:])
    return "".join(out)


def encoded_words(value: str) -> list:
    r"""Matches of ``re.finditer(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=", value)``.

    As (start, end, charset, encoding, text) tuples, left to right, not overlapping.
    """
    out = []
    n = len(value)
    i = value.find("=?")
    while i >= 0:
        j = i + 2
        k = j
        while k < n and value[k] != "?" and not value[k].isspace():
            k += 1
        if (
            k > j
            and value.startswith("?", k)
            and k + 2 < n
            and value[k + 1] in "bBqQ"
            and value[k + 2] == "?"
        ):
            t = k + 3
            e = t
            while e < n and value[e] != "?" and not value[e].isspace():
                e += 1
            if value.startswith("?=", e):
                out.append((i, e + 2, value[j:k], value[k + 1], value[t:e]))
                i = value.find("=?", e + 2)
                continue
        i = value.find("=?", i + 1)
    return out


# The SMTP dialogue's phases, in order (RFC 5321 §3): the greeting, HELO/EHLO, MAIL FROM,
# RCPT TO, DATA (and the reply to the end of the message data).
PHASES = ("connect", "helo", "mail", "rcpt", "data")

# Wording that names the command a failure reply answered (lower case), by MTA.  The
# first one found decides.
_PHASE_SAID = (
    # Postfix smtp(8): "... said: 550 5.1.1 ... (in reply to RCPT TO command)".
    ("in reply to rcpt to command", "rcpt"),
    ("in reply to mail from command", "mail"),
    ("in reply to end of data command", "data"),
    ("in reply to data command", "data"),
    ("in reply to ehlo command", "helo"),
    ("in reply to helo command", "helo"),
    ("in reply to lhlo command", "helo"),
    # Postfix smtp(8), a refusal in the greeting: "host x[ip] refused to talk to me: 554 …".
    ("refused to talk to me", "connect"),
    # A refusal of the connection itself, whatever replied it ("554 mx.example.com ESMTP
    # not accepting connections").
    ("not accepting connections", "connect"),
    # Exim: "SMTP error from remote mail server after RCPT TO:<a@b>:", "… after pipelined
    # MAIL FROM:<s> SIZE=1024:", "… after end of data:", "… after initial connection:".
    ("after rcpt to", "rcpt"),
    ("after pipelined rcpt to", "rcpt"),
    ("after rcpt command", "rcpt"),
    ("after mail from", "mail"),
    ("after pipelined mail from", "mail"),
    ("after end of data", "data"),
    ("after pipelined end of data", "data"),
    ("after pipelined data", "data"),
    ("after data", "data"),
    ("after initial connection", "connect"),
    ("after ehlo", "helo"),
    ("after helo", "helo"),
    # qmail-remote: "192.0.2.1 does not like recipient.", "Connected to 192.0.2.1 but
    # sender was rejected.", "192.0.2.1 failed on DATA command.", "192.0.2.1 failed
    # after I sent the message.", "Connected to 192.0.2.1 but greeting failed.",
    # "Connected to 192.0.2.1 but my name was rejected."
    ("does not like recipient", "rcpt"),
    ("sender was rejected", "mail"),
    ("but greeting failed", "connect"),
    ("but my name was rejected", "helo"),
    ("failed on data command", "data"),
    ("failed after i sent the message", "data"),
    # DragonFly dma: "... did not like our RCPT TO: 550 ...", "did not like our final DATA".
    ("did not like our rcpt to", "rcpt"),
    ("did not like our mail from", "mail"),
    ("did not like our final data", "data"),
    ("did not like our data", "data"),
    # GMX and 1&1 (Exim-like intro): "SMTP error from remote server for RCPT TO command,
    # host: ...", "... for MAIL FROM command", "... for TEXT command" (the message text,
    # after DATA).
    ("for rcpt to command", "rcpt"),
    ("for mail from command", "mail"),
    ("for text command", "data"),
    ("for data command", "data"),
    # Yahoo's tags after the reply: "552 ... Mailbox Full [RCPT_TO]", "[MAIL_FROM]".
    ("[rcpt_to]", "rcpt"),
    ("[mail_from]", "mail"),
    # Gmail's notices until 2013: "... User Unknown (state 14).", "Header error (state 18)."
    ("(state 14)", "rcpt"),
    ("(state 17)", "data"),
    ("(state 18)", "data"),
    # Postfix smtpd(8)'s restriction classes name what was refused (with the default
    # smtpd_delay_reject = yes all are answered to RCPT TO, but the refusal is about the
    # client, its HELO name or the sender): "Client host rejected: …", "Helo command
    # rejected: …", "Sender address rejected: …", "Recipient address rejected: …".
    ("client host rejected", "connect"),
    ("helo command rejected", "helo"),
    ("sender address rejected", "mail"),
    ("recipient address rejected", "rcpt"),
)

# Session transcripts (Sendmail "----- Transcript of session follows -----", Courier and
# others): ">>> RCPT To:<a@b>" then "<<< 550 …"; the command sent last before the first
# failure reply is the one it answered.
_PHASE_SENT = (
    # Courier 1.0.16 writes the greeting it got as an answer to ">>> (initial greeting)".
    (">>> (initial greeting)", "connect"),
    (">>> rcpt", "rcpt"),
    (">>> mail", "mail"),
    (">>> data", "data"),
    (">>> ehlo", "helo"),
    (">>> helo", "helo"),
    (">>> lhlo", "helo"),
)

# A refusal of DATA that only says no recipient was accepted: the failure that matters was
# the reply to a (pipelined, RFC 2920) RCPT TO before it ("550 5.1.1 … 554 5.5.1 Error: no
# valid recipients"; Sendmail "503 5.0.0 Need RCPT (recipient)").
_NO_RCPT = ("no valid recipients", "need rcpt", "valid rcpt command must precede data")


def find_phase(low: str) -> str | None:
    """The SMTP phase (one of PHASES) a failure reply answered, from a lower-cased text.

    None when the text does not say.  Linear: a fixed number of ``str.find`` passes.
    """
    best = -1
    phase = None
    for needle, p in _PHASE_SAID:
        i = low.find(needle)
        if i >= 0 and (best < 0 or i < best):
            best, phase = i, p
    if phase is None:
        failure = -1
        for reply in ("<<< 4", "<<< 5"):
            i = low.find(reply)
            if i >= 0 and (failure < 0 or i < failure):
                failure = i
        best = -1
        for needle, p in _PHASE_SENT:
            i = low.rfind(needle, 0, failure if failure >= 0 else len(low))
            if i > best:
                best, phase = i, p
    if phase == "data":
        for words in _NO_RCPT:
            if words in low:
                return "rcpt"
    return phase


def last_command(low: str) -> str | None:
    """The phase of the last ">>> COMMAND" line of a lower-cased transcript, or None."""
    best = -1
    phase = None
    for needle, p in _PHASE_SENT:
        i = low.rfind(needle)
        if i > best:
            best, phase = i, p
    return phase


def statuses(text: str, limit: int = 8) -> list:
    """The RFC 3463 status codes in text, left to right (find_status's rule), at most limit."""
    out = []
    pos = 0
    while len(out) < limit:
        span = status_span(text, pos)
        if span is None:
            break
        out.append(text[span[0] : span[1]])
        pos = span[1]
    return out


def _fold_lower(text: str) -> str:
    """``text`` lower-cased as re.IGNORECASE compares a literal (same length: see _FOLD)."""
    # str.replace rather than str.translate(_FOLD): C speed on a megabyte of HTML.
    if not text.isascii():
        text = text.replace("\u0130", "i").replace("\u0131", "i").replace("\u017f", "s")
    return text.lower()


def _ref_key(text: str) -> str:
    """``text`` as a backreference under re.IGNORECASE compares it: simple lower cases.

    "ſ" (which the literal "s" matches) must be closed by "ſ" again; U+0130's simple
    lower case is "i" (its full one, "i̇", would change the length).
    """
    if not text.isascii():
        text = text.replace("\u0130", "i")
    return text.lower()


def strip_blocks(html: str) -> str:
    r"""``re.sub(r"(?is)<(script|style)\b.*?</\1>", "", html)``: HTML script/style blocks.

    Linear: the regex restarts its lazy scan for "</script>" at every "<script" and, when
    none closes, rescans to the end each time (repeated "<script>": 114 s at 600 KB,
    issue 14).  Here the text is case-folded once, both ways re.IGNORECASE compares
    (``low``: as a literal, ``keyed``: as a backreference; same length as ``html``), the
    openings and closings are found by str.find, and a closing tag missing after one
    position is missing after every later one, so it is looked for once.
    """
    if "<" not in html:
        return html
    n = len(html)
    if html.isascii():
        low = keyed = html.lower()
    else:
        low, keyed = _fold_lower(html), _ref_key(html)
    out = []
    pos = 0
    missing = {}  # closing tag -> a position after which it does not occur
    script = low.find("<script")
    style = low.find("<style")
    while script >= 0 or style >= 0:
        if style < 0 or 0 <= script < style:
            i, tag = script, "script"
        else:
            i, tag = style, "style"
        e = i + 1 + len(tag)
        resume = i + 1
        close = "</" + keyed[i + 1 : e] + ">"
        # "<scripts>": no word boundary, not the element.
        if not (e < n and _wordchar(html[e])) and missing.get(close, n + 1) > e:
            j = keyed.find(close, e)
            if j >= 0:
                out.append(html[pos:i])
                pos = resume = j + len(close)
            elif low.find("</" + tag + ">", e) < 0:
                # No closing tag of any case after here: no later "<tag" can match.
                if tag == "script":
                    script = -1
                else:
                    style = -1
                continue
            else:
                missing[close] = e  # only this spelling ("ſcript") is never closed
        if 0 <= script < resume:
            script = low.find("<script", resume)
        if 0 <= style < resume:
            style = low.find("<style", resume)
    out.append(html[pos:])
    return "".join(out)


def replace_tags(text: str, breaks: tuple) -> str:
    r"""``re.sub(r"<[^>]*>", f, text)``: HTML tags to "\n" (see ``breaks``) or nothing.

    f gives "\n" for a tag whose two characters after "<" are, lower-cased, in
    ``breaks``, else "".  A tag runs from "<" to the first ">" (it may hold other "<");
    with no ">" left the rest of the text is no tag, at any of its "<" (a regex rescans
    to the end from each of them: 100 KB of "<" took 3 s, issue 14).
    """
    out = []
    pos = 0
    i = text.find("<")
    while i >= 0:
        j = text.find(">", i + 1)
        if j < 0:
            break
        out.append(text[pos:i])
        if text[i + 1 : i + 3].lower() in breaks:
            out.append("\n")
        pos = j + 1
        i = text.find("<", pos)
    out.append(text[pos:])
    return "".join(out)


_LOCAL_PUNCT = frozenset(".+=/!#$%&'*?^`{|}~-")


def _local_char(c: str) -> bool:
    return c.isalnum() or c == "_" or c in _LOCAL_PUNCT


def _label_char(c: str) -> bool:
    return c.isalnum() or c == "_" or c == "-"


class Span:
    """The few ``re.Match`` methods callers of ``Address`` use."""

    __slots__ = ("string", "_start", "_end")

    def __init__(self, string: str, start: int, end: int) -> None:
        self.string = string
        self._start = start
        self._end = end

    def group(self, n: int = 0) -> str:
        """The matched text (there are no groups)."""
        if n:
            raise IndexError("no such group")
        return self.string[self._start : self._end]

    def start(self) -> int:
        """Where the match starts."""
        return self._start

    def end(self) -> int:
        """Where the match ends."""
        return self._end

    def span(self) -> tuple:
        """(start, end)."""
        return self._start, self._end


class Address:
    r"""``re.compile(r"[\w.+=/!#$%&'*?^`{|}~-]{1,200}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,16}")``.

    An address as bounces print it, UTF-8 allowed on both sides (RFC 6531); bounded
    repeats from RFC 5321 §4.5.3.1 (local part 64, labels 63; VERP tokens run longer).
    As a regex every start position in a long run of word characters scans 200 ahead for
    an "@" (64 KB of letters in a To: header: 0.2 s; 10 MiB: minutes); here the work
    starts at each "@": the local part is the run before it (at most 200 characters back,
    never past the previous "@"), the domain the labels after it, so each character is
    looked at a bounded number of times.  Offers search, finditer, findall and fullmatch.
    """

    __slots__ = ()

    def _at(self, text: str, at: int, lo: int) -> Span | None:
        """The match whose "@" is text[at], starting at or after lo, or None."""
        n = len(text)
        # Domain: a full label (followed by "."), then 1..16 ".label" groups, greedy; a
        # label longer than 63 ends the repetition with its first 63 characters.
        j = at + 1
        k = j
        while k < n and k - j <= 63 and _label_char(text[k]):
            k += 1
        if k == j or k - j > 63 or k >= n or text[k] != ".":
            return None
        end = -1
        groups = 0
        while groups < 16 and k < n and text[k] == ".":
            j = k + 1
            k = j
            while k < n and k - j < 63 and _label_char(text[k]):
                k += 1
            if k == j:
                break
            groups += 1
            end = k
            if k - j == 63 and k < n and _label_char(text[k]):
                break  # the label runs on: the group took its first 63 characters
        if end < 0:
            return None
        # Local part: the longest run of local characters ending at "@", at most 200.
        s = at
        stop = max(lo, at - 200)
        while s > stop and _local_char(text[s - 1]):
            s -= 1
        if s == at:
            return None
        return Span(text, s, end)

    def search(self, text: str, pos: int = 0) -> Span | None:
        """The leftmost match at or after pos (as ``re.Pattern.search``)."""
        at = text.find("@", pos)
        lo = pos
        while at >= 0:
            # _at's first test before calling it: an "@" no label character follows ends
            # nothing (64 KB of "@" on one line: a full _at call each was 5x a plain
            # notice, issue 14).
            c = text[at + 1 : at + 2]
            if c and _label_char(c):
                m = self._at(text, at, lo)
                if m is not None:
                    return m
            lo = at + 1  # a local part holds no "@"
            at = text.find("@", lo)
        return None

    def finditer(self, text: str):
        """Every non-overlapping match, left to right."""
        pos = 0
        while True:
            m = self.search(text, pos)
            if m is None:
                return
            yield m
            pos = m.end()

    def findall(self, text: str) -> list:
        """The text of every match."""
        return [m.group(0) for m in self.finditer(text)]

    def fullmatch(self, text: str) -> Span | None:
        """A match of the whole text, or None."""
        m = self.search(text)
        return m if m is not None and m.start() == 0 and m.end() == len(text) else None
