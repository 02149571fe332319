"""A lean MIME walker for bounces: just enough of RFC 2045-2049 and RFC 2047, at byte level.

The ``email`` package costs ~22 ms to import and parses far more than a bounce needs; this
walker does header unfolding, ``multipart/*`` boundaries, nested ``message/rfc822`` /
``message/global`` (RFC 6532) and ``text/rfc822-headers`` (RFC 6522), base64 and
quoted-printable via ``binascii``, charsets via ``codecs`` with ``errors="replace"``, and
RFC 2047 encoded words.  It never raises on malformed input (a bad boundary makes a part
opaque, a bad charset falls back to cp1252); depth and part counts are bounded so a
hostile message cannot make the pipe spin.
"""

from __future__ import annotations

import binascii

from bounce_handler.parse.scan import encoded_words, first_lines, join_encoded_words, unfold
from bounce_handler.parse.scan import params as _params

MAX_DEPTH = 8  # nesting of multiparts / attached messages we follow
MAX_PARTS = 200  # parts per message, all levels together
# Lines a multipart's splitting passes over that start like its delimiter but run on
# ("--boundaryXYZ": a nested multipart's longer boundary): one per nested part, so ten
# times the parts a whole message may have.
MAX_LONGER_DELIMITERS = 10 * MAX_PARTS
# Bounds on what any scanner or pattern downstream sees of one entity (the pipe reads up
# to 10 MiB): the lines of a header block, before unfolding (a long folded field is kept:
# a 3 MiB one is 40,000 lines) and after (a real header has tens of fields; each line costs
# a little Python, and 2.5 million folds took 1.4 s), and a part's decoded text (a notice
# is read up to base.MAX_TEXT, a report of MAX_RECIPIENTS groups is ~300 KB).
MAX_HEADER_LINES = 5000
MAX_FOLDED_LINES = 100_000
# A field's value: Postfix's cleanup(8) keeps at most header_size_limit (102400) bytes of
# one header, so through Postfix a longer one never arrives; past it the Python scanners
# downstream (addresses in To:, Content-Type parameters) would cost seconds at 10 MiB.
MAX_FIELD_CHARS = 102400
MAX_TEXT_BYTES = 1024 * 1024

_MESSAGE_TYPES = ("message/rfc822", "message/global", "message/rfc822-headers")
_HEADER_TYPES = ("text/rfc822-headers", "message/global-headers")


_WESTERN = frozenset(("us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1", "cp1252",
                      "windows-1252", "iso-8859-15", "ansi_x3.4-1968"))


def normalize(raw: bytes) -> bytes:
    """LF line endings whatever came in: CRLF (SMTP, LMTP) or CR-only (old Mac clients)."""
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw


def to_str(data: bytes, charset: str | None = None) -> str:
    """Decode bytes: the declared charset if Python knows it, else UTF-8, else cp1252.

    Bounces are full of mislabelled text (8-bit "us-ascii", Shift_JIS sent as
    "iso-8859-1"); replacing what does not decode keeps addresses and codes readable.
    """
    if charset:
        cs = charset.strip().strip('"').lower()
        if cs in _WESTERN:
            # UTF-8 labelled Latin-1/ASCII is the commonest mislabel; valid UTF-8 with
            # non-ASCII bytes is almost never real Latin-1 text.
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("cp1252" if cs != "iso-8859-15" else cs, "replace")
        if cs not in ("utf-8", "utf8"):
            try:
                return data.decode(cs, "replace")
            except (LookupError, ValueError):  # unknown name, or a NUL inside it
                pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words (=?charset?B|Q?...?=) in a header value."""
    if "=?" not in value:
        return value
    value = join_encoded_words(value)  # RFC 2047 §6.2: blanks between words vanish
    out = []
    pos = 0
    for start, end, charset, enc, text in encoded_words(value):
        out.append(value[pos:start])
        out.append(_decode_word(value[start:end], charset, enc, text))
        pos = end
    out.append(value[pos:])
    return "".join(out)


def _decode_word(whole: str, charset: str, enc: str, text: str) -> str:
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    raw = text.encode("ascii", "replace")
    try:
        if enc in "bB":
            data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        else:
            data = binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return whole
    if not data and text:
        return whole  # nothing decodable in it: show it as it came
    return to_str(data, charset)


def parse_headers(block: bytes) -> list:
    """Header fields of a block as [(lower-cased name, unfolded value)], in order.

    Only the first MAX_FOLDED_LINES lines are unfolded, the first MAX_HEADER_LINES
    fields (or stray lines) of the result read, and MAX_FIELD_CHARS of each value kept.
    """
    text = to_str(first_lines(block, MAX_FOLDED_LINES))
    if "\n " in text or "\n\t" in text:
        text = unfold(text)
    out = []
    for line in text.split("\n", MAX_HEADER_LINES)[:MAX_HEADER_LINES]:
        i = line.find(":")
        if i > 0:
            name = line[:i].rstrip()
            if " " not in name and "\t" not in name:
                out.append((name.lower(), line[i + 1 : i + 1 + MAX_FIELD_CHARS].strip()))
                continue
        # Not a field (mbox "From " line, stray text) — unless it is a parameter whose
        # line lost its folding blank: "Content-Type: multipart/alternative;\n
        # boundary=..." (Apache James, Verizon's gateway).  Bounded: a hostile run of
        # "a=b" lines must not make the joining quadratic.
        if (out and "=" in line and out[-1][1].endswith(";") and line[:1] not in "-="
                and len(out[-1][1]) < 998):
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
    return out


def split_head(raw: bytes) -> tuple:
    """(header block, body) of an LF-normalised entity; lenient about a missing header."""
    if raw.startswith(b"From ") and b"\n" in raw:
        # mbox separator left on a single message ("From sender date"): not a header.
        raw = raw[raw.index(b"\n") + 1 :]
    if raw.startswith(b"\n"):
        return b"", raw[1:]
    i = raw.find(b"\n\n")
    if i < 0:
        return raw, b""
    return raw[:i], raw[i + 2 :]


def _content_type(value: str | None) -> tuple:
    if not value:
        return "text/plain", {}
    main, _, rest = value.partition(";")
    params = {}
    if rest:
        for k, v in _params(";" + rest):
            if v.startswith('"'):
                v = v[1:-1].replace('\\"', '"')
            params[k.lower()] = v
    return main.strip().lower() or "text/plain", params


class Part:
    """One MIME entity: its headers, content type, decoded body and sub-parts.

    Sub-parts are split and parsed on first access to ``parts``: a bounce's returned
    message (often a multipart with attachments) is rarely needed beyond its headers.
    """

    __slots__ = ("headers", "ctype", "params", "raw_body", "_parts", "_body", "_text",
                 "_budget", "_depth")

    def __init__(self, headers: list, raw_body: bytes, budget: list, depth: int = 0) -> None:
        self.headers = headers
        self.ctype, self.params = _content_type(self.get("content-type"))
        self.raw_body = raw_body
        self._parts = None
        self._body = None
        self._text = None
        self._budget = budget
        self._depth = depth

    @property
    def parts(self) -> list:
        """The sub-parts (multipart children, or the attached message of message/*)."""
        if self._parts is None:
            self._parts = self._split()
        return self._parts

    def _split(self) -> list:
        out = []
        budget = self._budget
        depth = self._depth
        if depth >= MAX_DEPTH or budget[0] <= 0:
            return out
        ctype = self.ctype
        if ctype.startswith("multipart/"):
            boundary = self.params.get("boundary")
            if boundary:
                for chunk in _split(self.raw_body, boundary.encode("utf-8", "replace"),
                                    budget[0]):
                    budget[0] -= 1
                    if budget[0] <= 0:
                        break
                    h, b = split_head(chunk)
                    out.append(Part(parse_headers(h), b, budget, depth + 1))
        elif ctype in _MESSAGE_TYPES:
            budget[0] -= 1
            h, b = split_head(self.body.lstrip(b"\n"))
            out.append(Part(parse_headers(h), b, budget, depth + 1))
        elif ctype in _HEADER_TYPES:
            budget[0] -= 1
            h, _ = split_head(self.body.lstrip(b"\n"))
            out.append(Part(parse_headers(h), b"", budget, depth + 1))
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name`` (lower case), else ``default``."""
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def get_all(self, name: str) -> list:
        """Every value of header ``name`` (lower case), in order."""
        return [v for n, v in self.headers if n == name]

    @property
    def body(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone."""
        if self._body is None:
            cte = (self.get("content-transfer-encoding") or "").strip().lower()
            data = self.raw_body
            if cte == "base64":
                try:
                    data = binascii.a2b_base64(data)
                except (binascii.Error, ValueError):
                    # Truncated bounce copies often lose the base64 padding.
                    try:
                        data = binascii.a2b_base64(data.strip() + b"==")
                    except (binascii.Error, ValueError):
                        pass
            elif cte == "quoted-printable":
                data = binascii.a2b_qp(data)
            self._body = data
        return self._body

    def text(self) -> str:
        """Return the body as text, decoded with its declared charset (errors replaced).

        At most MAX_TEXT_BYTES of the decoded body: everything that reads text reads this.
        """
        if self._text is None:
            data = self.body
            if len(data) > MAX_TEXT_BYTES:
                # Cut on a UTF-8 character boundary (back over at most 3 continuation
                # bytes): a cut sequence made the whole megabyte fail UTF-8 and read as
                # cp1252 (mojibake, and 4.6x a plain report's time, issue 14's table).
                cut = MAX_TEXT_BYTES
                while cut > MAX_TEXT_BYTES - 3 and data[cut] & 0xC0 == 0x80:
                    cut -= 1
                data = data[:cut]
            self._text = normalize_text(to_str(data, self.params.get("charset")))
        return self._text

    def walk(self, into_messages: bool = False):
        """Yield this part and every part below it, depth first.

        Attached messages (message/rfc822 …) are yielded but not entered unless
        ``into_messages``: the returned original is not part of the notice.
        """
        yield self
        if self.ctype.startswith("multipart/") or into_messages:
            for p in self.parts:
                yield from p.walk(into_messages)


def normalize_text(text: str) -> str:
    """LF line ends after decoding (a base64 body may carry its own CRLFs)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _split(body: bytes, boundary: bytes, limit: int = MAX_PARTS) -> list:
    """Split at RFC 2046 §5.1.1 delimiter lines ("--boundary"), lenient; ``limit`` parts.

    Each line starting like a delimiter costs a Python iteration (a returned copy's body
    of 16,000 of them: 5x a plain message, issue 14), so the scan stops at ``limit``
    parts (the caller keeps no more: its part budget) or after MAX_LONGER_DELIMITERS
    lines that only start like one; the part being read then runs to the end, as in an
    unterminated multipart.
    """
    delim = b"\n--" + boundary
    data = b"\n" + body
    parts = []
    start = -1
    longer = 0
    pos = data.find(delim)
    while pos >= 0:
        after = pos + len(delim)
        nl = data.find(b"\n", after)
        end = nl if nl >= 0 else len(data)
        tail = data[after:end]
        closing = tail.startswith(b"--")
        if not closing and tail.strip():
            # "--boundaryXYZ": a longer boundary of a nested multipart, not ours.
            longer += 1
            if longer > MAX_LONGER_DELIMITERS:
                break
            pos = data.find(delim, after)
            continue
        if start >= 0:
            parts.append(data[start:pos])
        if closing or len(parts) >= limit:
            return parts
        start = end + 1
        pos = data.find(delim, end)
    if start >= 0 and start < len(data):
        parts.append(data[start:])  # unterminated multipart: truncated bounce copy
    return parts


def parse_message(raw: bytes) -> Part:
    """Parse the top-level entity of a (normalised or not) message."""
    raw = normalize(raw)
    h, b = split_head(raw)
    return Part(parse_headers(h), b, [MAX_PARTS])
