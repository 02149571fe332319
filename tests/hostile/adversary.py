"""Worst-case inputs for every pattern and scanner on the intake path, derived from themselves.

Shared by tests/hostile/test_adversarial.py (generous bounds: catch quadratic behaviour) and
bench/adversarial.py (the precise table).  Nothing here is a list of known-bad strings:

* **Patterns** are enumerated from ``lazyre.ALL`` after every registered detector and
  ``classify`` are imported, so a pattern another module adds tomorrow is attacked the day
  it lands.  Each is parsed with CPython's own regex parser (``re._parser``) and the
  attacks are built from its structure: every *partial match* (the pattern's literal
  pieces, class representatives and alternatives, cut after each element: what makes a
  search restart and rescan) repeated to fill the size, alone and joined by newlines or
  blanks; and every *pump* (the text before a quantifier, then its body repeated).
* **Scanners** are the public functions and classes of ``parse/scan.py`` (each documents
  the regex it stands for; the same generator attacks that regex's structure) plus a
  registry, ``SCANNERS``, of the other hand-written code every message goes through
  (HTML reduction, MIME splitting, header unfolding, RFC 2047 words, base64 and
  quoted-printable).  A scan.py scanner whose docstring names no regex and that has no
  registry entry fails the test: nothing is left unattacked by omission.

Each attack is then embedded where detectors read text (``PLACES``): the Subject, a
text/plain notice, an HTML-only notice, the fields of a delivery-status report, the
notice's own headers, the attached original's headers, and (for a pattern owned by a
detector) behind that detector's own wording so its ``scan`` really runs over it.
"""

from __future__ import annotations

import inspect

# re is fine here: this runs in tests and benches, never in the pipe.
import re
import sys
import time
from re import _constants as C
from re import _parser as sre_parse

MAXREPEAT = C.MAXREPEAT
# A partial match is cut here: what matters is the repeat structure, not a 200-char run.
MAX_PARTIAL = 300
# Partial matches kept per pattern (long alternations give hundreds; the variety is in
# the first few of each branch).
MAX_PARTIALS = 120

_CANDIDATES = "a0 -.@<>_xZ\t:;,/\"'()[]=+*#!?|\\{}~&%$^`\n"


def _in_set(ch: str, items: list, flags: int) -> bool:
    """Whether ``ch`` matches a parsed character class (the items of an IN node)."""
    neg = False
    hit = False
    chars = {ch}
    if flags & re.I:
        chars |= {ch.lower(), ch.upper()}
    for op, av in items:
        if op is C.NEGATE:
            neg = True
        elif op is C.LITERAL:
            hit |= chr(av) in chars
        elif op is C.RANGE:
            hit |= any(av[0] <= ord(c) <= av[1] for c in chars)
        elif op is C.CATEGORY:
            hit |= _category(ch, av)
    return hit != neg


def _category(ch: str, cat) -> bool:
    name = str(cat)
    if "NOT_" in name:
        return not _category(ch, getattr(C, name.replace("NOT_", "")))
    if "DIGIT" in name:
        return ch.isdecimal()
    if "SPACE" in name:
        return ch in " \t\n\r\f\v" or ch.isspace()
    if "WORD" in name:
        return ch.isalnum() or ch == "_"
    if "LINEBREAK" in name:
        return ch == "\n"
    return False


def _set_char(items: list, flags: int) -> str:
    """A character the class accepts: its own literals first, then common ones."""
    own = [chr(av) for op, av in items if op is C.LITERAL]
    own += [chr(av[0]) for op, av in items if op is C.RANGE]
    for ch in own + list(_CANDIDATES) + [chr(c) for c in range(32, 0x250)]:
        if _in_set(ch, items, flags):
            return ch
    return "a"


_SALT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


class Gen:
    """Sample strings of one parsed pattern."""

    def __init__(self, pattern: str, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        parsed = sre_parse.parse(pattern, flags)
        self.flags = parsed.state.flags
        self.items = list(parsed)
        self.groups: dict[int, str] = {}
        self.salt: int | None = None

    # -- one minimal match ------------------------------------------------------------
    def sample(self, items, salt: int | None = None) -> str:
        """A short match of ``items``; with ``salt``, runs of a class spell that number.

        (Distinct full matches: a loop over matches that rescans per *new* one, such as
        "one diagnostic search per distinct recipient", only shows on distinct matches.)
        """
        self.salt = salt
        try:
            return "".join(self._one(op, av) for op, av in items)
        finally:
            self.salt = None

    def _salted(self, body) -> str | None:
        if self.salt is None or len(body) != 1 or body[0][0] is not C.IN:
            return None
        ok = [c for c in _SALT_CHARS if _in_set(c, body[0][1], self.flags)]
        if len(ok) < 2:
            return None
        n, out = self.salt, []
        while True:
            n, r = divmod(n, len(ok))
            out.append(ok[r])
            if not n:
                return "".join(out)

    def _one(self, op, av) -> str:
        if op is C.LITERAL:
            return chr(av)
        if op is C.NOT_LITERAL:
            return "a" if chr(av) != "a" else "b"
        if op is C.ANY:
            return "a"
        if op is C.IN:
            return _set_char(av, self.flags)
        if op is C.BRANCH:
            return self._seq(av[1][0])
        if op is C.SUBPATTERN:
            gid, _add, _del, sub = av
            s = self._seq(sub)
            if gid:
                self.groups[gid] = s
            return s
        if op is C.ATOMIC_GROUP:
            return self._seq(av)
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, body = av
            salted = self._salted(body) if hi >= 8 else None
            if salted is not None and len(salted) >= lo:
                return salted
            # An optional piece is taken ("couldn'?t" -> "couldn't"): detectors gate on
            # the full wording, so the full sample is the one that reaches their scans.
            return "".join(self._one(o, a) for o, a in body) * (1 if (lo, hi) == (0, 1) else lo)
        if op is C.GROUPREF:
            return self.groups.get(av, "")
        if op is C.GROUPREF_EXISTS:
            return self._seq(av[1])
        return ""  # AT anchors, look-arounds: zero width

    def _seq(self, items) -> str:
        return "".join(self._one(op, av) for op, av in items)

    # -- where a search restarts: every match cut short ---------------------------------
    def partials(self, items=None) -> list[str]:
        items = self.items if items is None else items
        out: list[str] = []
        acc = ""
        for op, av in items:
            out.append(acc)
            out.extend(acc + p for p in self._inner(op, av))
            acc += self._one(op, av)
        out.append(acc)
        return out

    def _inner(self, op, av) -> list[str]:
        if op is C.SUBPATTERN:
            return self.partials(av[3])
        if op is C.ATOMIC_GROUP:
            return self.partials(av)
        if op is C.BRANCH:
            return [p for branch in av[1] for p in self.partials(branch)]
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, body = av
            one = self.sample(body)
            reps = {1, 2, lo, lo + 1}
            out = [one * n for n in sorted(reps) if 0 < n <= (hi if hi != MAXREPEAT else n)]
            out += [one * max(lo - 1, 0) + p for p in self.partials(body)]
            return out
        return []

    # -- what a quantifier swallows: the text before it, then its body many times --------
    def pumps(self, items=None, head: str = "") -> list[tuple[str, str]]:
        items = self.items if items is None else items
        out: list[tuple[str, str]] = []
        acc = head
        for op, av in items:
            if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
                lo, hi, body = av
                if hi == MAXREPEAT or hi >= 16:
                    out.append((acc, self.sample(body) or "a"))
                out.extend(self.pumps(body, acc))
            elif op is C.SUBPATTERN:
                out.extend(self.pumps(av[3], acc))
            elif op is C.ATOMIC_GROUP:
                out.extend(self.pumps(av, acc))
            elif op is C.BRANCH:
                for branch in av[1]:
                    out.extend(self.pumps(branch, acc))
            acc += self._one(op, av)
        return out


def _fill(unit: str, size: int) -> str:
    if not unit:
        return ""
    return (unit * (size // len(unit) + 1))[:size]


def attacks(pattern: str, flags: int, size: int) -> list[tuple[str, str]]:
    """[(label, text of about ``size`` chars)] of worst-case candidates for one regex."""
    g = Gen(pattern, flags)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []

    def add(label: str, text: str) -> None:
        if text and text not in seen:
            seen.add(text)
            out.append((label, text))

    partials = []
    for p in g.partials():
        p = p[:MAX_PARTIAL]
        if p and p not in partials:
            partials.append(p)
    # The longest partials first: they go deepest before failing.
    partials.sort(key=len, reverse=True)
    for p in partials[:MAX_PARTIALS]:
        add(f"({p!r})*", _fill(p, size))
        add(f"({p!r}+LF)*", _fill(p + "\n", size))
        add(f"({p!r}+SP)*", _fill(p + " ", size))
    for head, body in g.pumps():
        add(f"{head[:40]!r}+({body!r})*", (head + _fill(body, size))[:size + len(head)])
        add(f"({head[:40]!r}+{body!r}*64+LF)*", _fill(head + body * 64 + "\n", size))
    # Distinct full matches, one a line.
    lines, total, i = [], 0, 0
    while total < size and i < size:
        line = g.sample(g.items, salt=i) + "\n"
        lines.append(line)
        total += len(line)
        i += 1
    full = g.sample(g.items)
    add(f"distinct({full[:40]!r}+LF)*", "".join(lines)[:size])
    return out


# Floods that are not derived from one pattern but every parser must survive.
GENERIC = {
    "lt-flood": "<",
    "script-flood": "<script>",
    "comment-open": "<!--",
    "at-flood": "@",
    "word-run": "a",
    "dash-line": "-",
    "blank-run": " ",
    "newlines": "\n",
    "encoded-word-open": "=?",
    "paren-open": "(",
    "quote-open": '"',
    "host-flood": "host ",
    "status-like": "5.5.5.",
}


def generic_attacks(size: int) -> list[tuple[str, str]]:
    """The floods above at ``size``, plus a 10 MiB-style single line of mixed words."""
    out = [(name, _fill(unit, size)) for name, unit in GENERIC.items()]
    line = "550 5.1.1 <a@b.example> user unknown host mx[1.2.3.4] "
    out.append(("mixed-line", _fill(line, size)))
    return out


# -- What to attack ---------------------------------------------------------------------------


def all_patterns() -> list:
    """Every lazyre pattern of every registered detector and of classify, with its owner."""
    from bounce_handler import classify  # noqa: F401 - its patterns register on import
    from bounce_handler.parse import lazyre, registry

    registry.detectors()
    owners: dict = {}
    rows: dict = {}
    for name, mod in list(sys.modules.items()):
        if not name.startswith("bounce_handler") or mod is None or mod is lazyre:
            continue
        for attr, value in vars(mod).items():
            if isinstance(value, lazyre.LazyPattern):
                owners.setdefault(id(value), (name, attr))
            elif isinstance(value, type):
                for cattr, cvalue in vars(value).items():
                    if isinstance(cvalue, lazyre.LazyPattern):
                        owners.setdefault(id(cvalue), (name, f"{attr}.{cattr}"))
            elif isinstance(value, (tuple, list)):
                # Tables of patterns (classify's wording table): named by the row's key.
                for row in value:
                    cells = row if isinstance(row, tuple) else (row,)
                    for cell in cells:
                        if isinstance(cell, lazyre.LazyPattern):
                            key = cells[0] if isinstance(cells[0], str) else len(rows)
                            rows.setdefault(id(cell), (name, f"{attr}[{key!r}]"))
    owners = {**rows, **owners}
    out = []
    seen = set()
    for p in lazyre.ALL:
        key = (p.pattern, p.flags)
        if key in seen:
            continue
        seen.add(key)
        mod, attr = owners.get(id(p), ("?", "?"))
        out.append(Target(f"{mod.rpartition('.')[2]}.{attr}", mod, p.pattern, p.flags, p))
    return out


class Target:
    """One regex or scanner under attack."""

    def __init__(self, name, module, pattern, flags, obj, run=None, extra=()) -> None:
        self.name = name
        self.module = module
        self.pattern = pattern
        self.flags = flags
        self.obj = obj
        self._run = run
        self.extra = extra  # hand-made attacks (units) for scanners without a regex

    def run(self, text: str):
        """Use it the most exhaustive way its callers do (every match of a regex)."""
        if self._run is not None:
            return self._run(text)
        return sum(1 for _ in self.obj.finditer(text))

    def attacks(self, size: int) -> list[tuple[str, str]]:
        out = attacks(self.pattern, self.flags, size) if self.pattern else []
        out += [(f"({u[:40]!r})*", _fill(u, size)) for u in self.extra]
        return out

    def __repr__(self) -> str:
        return f"Target({self.name})"


_DOC_RE = re.compile(r"""``re\.\w+\(r(["'])(.*?)\1\s*[,)]""", re.S)
_DOC_PATTERN = re.compile(r"PATTERN = ``(.+?)``")
_DOC_FLAGS = re.compile(r"\bre\.(I|IGNORECASE)\b")


def documented_regex(obj) -> tuple[str, int] | None:
    """The regex a hand-written scanner says it stands for (its docstring), or None."""
    doc = inspect.getdoc(obj) or ""
    m = _DOC_PATTERN.search(doc)
    pattern = m.group(1) if m else None
    if pattern is None:
        m = _DOC_RE.search(doc)
        if not m:
            return None
        pattern = m.group(2)
        if pattern == "PATTERN":
            return None
    pattern = pattern.replace("WORD", "spam")
    flags = re.I if _DOC_FLAGS.search(doc) else 0
    return pattern, flags


def _html(text):
    from bounce_handler.parse.base import html_to_text

    return html_to_text(text)


def _tags(text):
    from bounce_handler.parse.base import _BREAKS
    from bounce_handler.parse.scan import replace_tags

    return replace_tags(text, _BREAKS)


def _mime_split(text):
    from bounce_handler.parse.mime import _split

    return _split(text.encode("utf-8", "surrogateescape"), b"B")


def _headers(text):
    from bounce_handler.parse.mime import parse_headers

    return parse_headers(text.encode("utf-8", "surrogateescape"))


def _words(text):
    from bounce_handler.parse.mime import decode_words

    return decode_words(text)


def _body(cte):
    def run(text):
        from bounce_handler.parse.mime import Part

        p = Part([("content-transfer-encoding", cte)], text.encode("utf-8", "surrogateescape"),
                 [10])
        return p.text()

    return run


def _clean(text):
    from bounce_handler.parse.base import clean_address, find_address

    return clean_address(text), find_address(text)


def _paragraphs(text):
    from bounce_handler.parse.base import address_paragraphs

    return address_paragraphs(text, None, True)


def _first_lines(text):
    from bounce_handler.parse.base import MAX_TEXT_LINES
    from bounce_handler.parse.scan import first_lines

    return first_lines(text, MAX_TEXT_LINES)


def _content_type(text):
    from bounce_handler.parse.mime import _content_type

    return _content_type(text)


# Hand-written code every message goes through that is not a one-regex scanner, with the
# units whose floods stress it (unclosed constructs, prefixes of its delimiters).
SCANNERS = {
    "scan.replace_tags": (_tags, ("<", "<br", "<<>", "<p", "<di")),
    "base.html_to_text": (_html, ("<", "<script>", "<script", "<!--", "<style>", "</", "&",
                                  "&amp", "<br", "<p x='", '<a href="', "<<>", "</script")),
    "mime._split": (_mime_split, ("\n--B", "\n--Bx", "\n--", "--B\n", "\n--B--x")),
    "mime.parse_headers": (_headers, ("a:", "\n ", "a\n", ":", " :", "\n\t")),
    "mime.decode_words": (_words, ("=?", "=?a?b?", "=?utf-8?q?=", "?= =?", "=?a?q?x?= ")),
    "mime.base64": (_body("base64"), ("=", "A", "AA=", "\n", "!")),
    "mime.quoted-printable": (_body("quoted-printable"), ("=", "=\n", "=A", "=ZZ")),
    "mime._content_type": (_content_type, (";", '; a="', "; a=", ";a=\"\\", "; =")),
    "base.clean_address": (_clean, ("<", "<a@", "a@", ";", "mailto:", "<<a@b>")),
    "scan.first_lines": (_first_lines, ("\n", "a\n", "\n\n", "a")),
    "base.address_paragraphs": (_paragraphs, ("a@b.c ", "a@b\n", "to: a@b.c ", "@", "\n\n")),
    # The SMTP-reply readers classify uses (a1-classify): status runs, reply codes, the
    # "550-" continuation join, the phase words.
    "scan.status_span": (None, ("5.", "5.1", "5.1.", "5.1.1", "25.", " 4.4", "5.1.1234")),
    "scan.statuses": (None, ("5.1.1 ", "5.", "4.4.7", "2.0.0.")),
    "scan.find_reply_code": (None, ("550", "550 5", "said: 5", ": 55", "<a@b> 550", "<<< 4")),
    "scan.join_reply_lines": (None, ("550-", "550-5.1.1 ", "-", "55", "550-5.1.1 550-")),
    "scan.find_phase": (None, ("in reply to ", "in reply to rcpt", "after rcpt", ">>> ")),
    "scan.last_command": (None, (">>> rcpt to:", ">>> ", ">>> data", ">>")),
}


def all_scanners() -> tuple[list, list]:
    """(targets, uncovered): scan.py's public scanners and the registry above."""
    from bounce_handler.parse import scan

    out = []
    uncovered = []
    for name, obj in vars(scan).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != scan.__name__:
            continue
        if not (inspect.isfunction(obj) or (inspect.isclass(obj) and hasattr(obj, "search"))):
            continue  # (classes without search are helpers: scan.Span)
        doc = documented_regex(obj)
        registered = f"scan.{name}" in SCANNERS
        if doc is None and not registered:
            uncovered.append(f"scan.{name}")
            continue
        entry_run, extra = SCANNERS.get(f"scan.{name}", (None, ()))
        if entry_run is not None:
            run = entry_run  # a scanner that takes more than the text
        elif inspect.isclass(obj):
            inst = obj("spam") if name == "Word" else obj()
            run = getattr(inst, "findall", None) or inst.search
        else:
            run = obj
        pattern, flags = doc if doc else (None, 0)
        out.append(Target(f"scan.{name}", scan.__name__, pattern, flags, obj, run, extra))
    for name, (run, units) in SCANNERS.items():
        if name.startswith("scan."):
            continue
        out.append(Target(name, name.split(".")[0], None, 0, run, run, units))
    return out, uncovered


# -- Where detectors read text ----------------------------------------------------------------

_DAEMON_HEAD = (
    "From: MAILER-DAEMON@mx.example (Mail Delivery System)\n"
    "To: bounces+alice=example.net@relay.example\n"
    "Message-ID: <adv@mx.example>\n"
    "MIME-Version: 1.0\n"
)
_SUBJECT = "Subject: Undelivered Mail Returned to Sender\n"


def _fold(text: str) -> str:
    """A header value: newlines become folds (the value unfolds to one long line)."""
    return text.replace("\r", " ").replace("\n", "\n ")


def _subject(attack: str, context: str) -> str:
    return (_DAEMON_HEAD + "Subject: " + _fold(attack) + "\n"
            "Content-Type: text/plain\n\n" + context + "alice@example.net: user unknown\n")


def _text(attack: str, context: str) -> str:
    return (_DAEMON_HEAD + _SUBJECT + "Content-Type: text/plain; charset=utf-8\n\n"
            + context + attack + "\n")


def _text_after(attack: str, context: str) -> str:
    # The attack as the section a detector lists addresses in, its stop marker never found.
    return (_DAEMON_HEAD + _SUBJECT + "Content-Type: text/plain; charset=utf-8\n\n"
            + context + "<alice@example.net>: user unknown\n" + attack + "\n")


def _html_place(attack: str, context: str) -> str:
    # An HTML part (issue 14's shape; base.notice_text reduces HTML parts of a multipart).
    html = context.replace("\n", "<br>\n")
    return (_DAEMON_HEAD + _SUBJECT + 'Content-Type: multipart/alternative; boundary="B"\n\n'
            "--B\nContent-Type: text/html; charset=utf-8\n\n"
            "<html><body>" + html + attack + "</body></html>\n--B--\n")


def _dsn(attack: str, context: str) -> str:
    f = _fold(attack)
    return (
        _DAEMON_HEAD + _SUBJECT
        + 'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n" + context + "\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; " + f + "\nX-Postfix-Sender: rfc822; " + f + "\n"
        "Arrival-Date: " + f + "\n\n"
        "Final-Recipient: rfc822; alice@example.net\nOriginal-Recipient: rfc822; " + f + "\n"
        "Action: failed\nStatus: 5.1.1 " + f + "\nRemote-MTA: dns; " + f + "\n"
        "Diagnostic-Code: smtp; " + f + "\n\n"
        "Final-Recipient: rfc822; " + f + "\nAction: " + f + "\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        "Received: from " + f + "\nReturn-Path: " + f + "\nFrom: " + f + "\nSubject: " + f
        + "\nMessage-ID: <" + f + ">\n\n--B--\n"
    )


def _headers_place(attack: str, context: str) -> str:
    f = _fold(attack)
    return (
        "From: MAILER-DAEMON@mx.example " + f + "\nTo: " + f + "\nCc: " + f + "\n"
        "X-Failed-Recipients: " + f + "\nContent-Type: text/plain; x=" + f + "\n"
        "Auto-Submitted: " + f + "\nX-Mailer: " + f + "\n" + _SUBJECT + "\n"
        + context + "alice@example.net: user unknown\n"
    )


def _original(attack: str, context: str) -> str:
    f = _fold(attack)
    return (
        _DAEMON_HEAD + _SUBJECT + 'Content-Type: multipart/mixed; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n" + context + "alice@example.net: user unknown\n"
        "--B\nContent-Type: message/rfc822\n\n"
        "Received: from x (Authenticated sender: " + f + ")\nReturn-Path: <" + f + ">\n"
        "From: " + f + "\nSubject: " + f + "\nMessage-ID: " + f + "\n\n" + attack + "\n--B--\n"
    )


PLACES = {
    "subject": _subject,
    "text": _text,
    "section": _text_after,
    "html": _html_place,
    "dsn": _dsn,
    "headers": _headers_place,
    "original": _original,
}


def context_for(target) -> str:
    """Notice wording that makes the detector owning ``target`` scan what follows it."""
    from bounce_handler.parse import registry

    name = target.module.rpartition(".")[2]
    if name not in registry.NAMES:
        return "This is the mail system at host mx.example.\n\n"
    det = registry.detector(registry.NAMES.index(name))
    words = list(getattr(det, "needles", ()) or ())
    start = getattr(det, "start", None)
    out = "\n".join(words) + "\n"
    if start is not None:
        g = Gen(start.pattern, start.flags)
        out += g.sample(g.items).lstrip("-") + "\n"
    return out


def message(place: str, attack: str, context: str) -> bytes:
    """The whole message for one attack in one place."""
    return PLACES[place](attack, context).encode("utf-8", "surrogateescape")


PROSE = ("The quick brown fox jumps over the lazy dog while the mail server reports\n"
         "nothing unusual at all today; alice@example.net was sent a copy (see below).\n")


def plain_message(place: str, size: int, context: str) -> bytes:
    """A message of the same shape and size with ordinary prose where the attack was.

    Prose in lines of ~75 characters, as mail is written (RFC 5322 §2.1.1 asks for 78).
    """
    return message(place, _fill(PROSE, size), context)


# -- Timing ----------------------------------------------------------------------------------


def timed(fn, *args, repeat: int = 1) -> float:
    """Best of ``repeat`` wall-clock runs of fn(*args), in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def worst_attacks(target, size: int, keep: int = 3, budget: float = 2.0) -> list:
    """[(seconds, label, text)] of the ``keep`` slowest attacks on the target alone.

    Attacks are tried at ``size``; one slower than ``budget`` seconds ends the search
    (it is the worst; the caller reports it).
    """
    found = []
    cands = target.attacks(size) + generic_attacks(size)
    for label, text in cands:
        t = timed(target.run, text)
        found.append((t, label, text))
        if t > budget:
            break
    found.sort(key=lambda x: x[0], reverse=True)
    return found[:keep]


def _parse():
    from bounce_handler.parse import parse

    return parse


class Row:
    """One attack in one place: its time and the plain message's (best of the runs)."""

    __slots__ = ("target", "label", "place", "seconds", "plain", "size")

    def __init__(self, target, label, place, seconds, plain, size) -> None:
        self.target = target
        self.label = label
        self.place = place
        self.seconds = seconds
        self.plain = plain
        self.size = size

    @property
    def ratio(self) -> float:
        return self.seconds / max(self.plain, 1e-6)


def plain_time(place: str, size: int, context: str, cache: dict, repeat: int = 3) -> float:
    """Best-of-``repeat`` parse time of the plain message (cached per place and context)."""
    key = (place, size, context)
    if key not in cache:
        parse = _parse()
        parse(plain_message(place, 2000, context))  # first use: imports (email, flufl...)
        cache[key] = timed(parse, plain_message(place, size, context), repeat=repeat)
    return cache[key]


def evaluate(target, size: int, cache: dict, keep: int = 2, probe: int = 8192,
             places=None, confirm: float = 3.0) -> list:
    """[Row] for the target's ``keep`` worst attacks (found alone at ``probe`` chars),
    each rebuilt at ``size`` and embedded in every place, whole message parsed.

    A row slower than ``confirm`` times its plain message is timed again, three runs of
    the attack interleaved with three of the plain message, best of each kept: on a
    shared machine one noisy run (of either) must not read as a quadratic pattern.
    """
    parse = _parse()
    worst = worst_attacks(target, probe, keep=keep, budget=1.0)
    full = dict(target.attacks(size) + generic_attacks(size))
    context = context_for(target)
    rows = []
    for _t, label, _text in worst:
        text = full[label]
        for place in places or PLACES:
            tp = plain_time(place, size, context, cache)
            msg = message(place, text, context)
            t = timed(parse, msg)
            if t > confirm * tp:
                plain = plain_message(place, size, context)
                for _ in range(3):
                    tp = min(tp, timed(parse, plain)) if _ else timed(parse, plain)
                    t = min(t, timed(parse, msg))
            rows.append(Row(target.name, label, place, t, tp, len(msg)))
    return rows


def attack_text(target, label: str, size: int) -> str:
    """The attack ``label`` of ``target`` rebuilt at ``size``."""
    return dict(target.attacks(size) + generic_attacks(size))[label]


def growth(target, row, size: int) -> float:
    """How a row's time grows from size/4 to size (linear: ~4; quadratic: ~16).

    Best of three runs each, interleaved: a ratio to a plain message misses a quadratic
    whose plain message is itself slow (flufl's fallback reads 400 lines of it).
    """
    parse = _parse()
    context = context_for(target)
    small = message(row.place, attack_text(target, row.label, size // 4), context)
    big = message(row.place, attack_text(target, row.label, size), context)
    ts = tb = float("inf")
    for _ in range(3):
        ts = min(ts, timed(parse, small))
        tb = min(tb, timed(parse, big))
    return tb / max(ts, 1e-4)


def all_targets() -> list:
    """Every pattern and scanner (fails loudly if a scanner has no attack source)."""
    scanners, uncovered = all_scanners()
    if uncovered:
        raise AssertionError(f"scanners with no documented regex and no SCANNERS entry: "
                             f"{uncovered}")
    return all_patterns() + scanners


# Single lines of ~10 MiB (the pipe's default max_message_bytes) in each place.
BIG_UNITS = {
    "lt": "<",
    "letters": "a",
    "script": "<script>",
    "at-dot": "a@b.",
    "mixed": "550 5.1.1 <a@b.example> user unknown host mx[1.2.3.4] (expanded from: x) ",
}
BIG_PLACES = ("subject", "text", "html", "dsn", "headers", "original")


def big_message(place: str, unit: str, size: int = 10 * 1024 * 1024 - 4096) -> bytes:
    """One ~``size`` line of ``unit`` in ``place`` (headers fold it: still one logical line).

    In the DSN and the original, the line goes into one field, not all of them.
    """
    line = _fill(unit, size)
    context = "This is the mail system at host mx.example.\n\n"
    if place in ("dsn", "original", "headers"):
        small = "x"
        raw = PLACES[place](small, context)
        # Put the big line in exactly one field: the diagnostic, the original's
        # Subject, the notice's To:.
        field = {"dsn": "Diagnostic-Code: smtp; ", "original": "\nSubject: ",
                 "headers": "\nTo: "}[place]
        i = raw.index(field) + len(field)
        return (raw[:i] + line + raw[i + len(small):]).encode("utf-8", "surrogateescape")
    return message(place, line, context)
