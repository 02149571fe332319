"""Sendmail 8 (old style, without the DSN part) and its descendants (AOL, early ISPs).

Matches::

    The original message was received at Tue, 24 Nov 2026 10:00:00 GMT
    from localhost [127.0.0.1]

       ----- The following addresses had permanent fatal errors -----
    <user@example.net>
        (reason: 550 5.1.1 <user@example.net>... User unknown)

       ----- Transcript of session follows -----
    ... while talking to mx.example.net.:
    >>> RCPT To:<user@example.net>
    <<< 550 5.1.1 <user@example.net>... User unknown

and the delay warning's "----- The following addresses had transient non-fatal errors -----"
("Warning: could not send message for past 4 hours").
"""

from __future__ import annotations

from bounce_handler.parse.base import (
    ADDRESS,
    Sniff,
    address_paragraphs,
    clean_address,
    rcpt,
    session_failures,
    usable_address,
)
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.scan import find_reply, last_command
from bounce_handler.parse.textbounce import TextBounce, returned_original

_TRANSCRIPT = lazy(r"(?<!-)-++ ?transcript of session follows ?-*", I)
_TALK = lazy(r"^(?:<<<|\d{3}[ -])\s*(.*)$", M)
_EXPANDED = lazy(r"\(expanded from:?\s*<?([^\s<>()]{1,200}@[^\s<>()]{1,255}?)>?\s*\)", I)
_RCPT = lazy(r"^>>> RCPT TO:\s*<?([^>\s]+)>?", I | M)
_DASHES = lazy(r"^[ \t]*-{3,}", M)


class Sendmail(TextBounce):
    """Sendmail notices: the "following addresses had ... errors" block + transcript."""

    name = "sendmail"
    needles = ("following addresses had", "transcript of session follows",
               "following addresses had permanent", "original message was received at")
    # "had delivery problems": Sendmail 8.7-8.8 and ISPs built on it (BIGLOBE).
    start = lazy(r"(?<!-)-*+ ?the following addresses had (?:permanent fatal|transient "
                 r"non-fatal|permanent|transient|delivery)? ?(?:errors|problems) ?-*[^\n]*\n",
                 I)
    stop = lazy(r"^[ \t]*-++ ?(?:transcript of session|original message|"
                      r"message header|returned message|the following addresses had)", I | M)
    delayed = lazy(r"transient non-fatal|warning: could not send|will keep trying|"
                         r"^warning:", I | M)

    def section(self, text: str) -> str | None:
        """The address block; "" when there is none but a transcript (its lines list)."""
        sec = TextBounce.section(self, text)
        if sec is None and _TRANSCRIPT.search(text):
            return ""
        return sec

    def match(self, s: Sniff) -> bool:
        """Sendmail's block headings."""
        return "following addresses had" in s.lower or (
            "transcript of session follows" in s.lower and "postfix" not in s.lower
        )

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Addresses of the block; the transcript supplies a missing reason."""
        own = s.own
        section, piped = _piped(section)
        pairs = address_paragraphs(section, own, echo=s.echo)
        named = {a.lower() for a, _ in pairs}
        final = {}  # alias -> the address it expanded to
        for a, d in piped:
            if a.lower() not in named:
                named.add(a.lower())
                pairs.append((a, d))
        transcript = ""
        m = _TRANSCRIPT.search(s.text)
        if m:
            rest = s.text[m.end():]
            e = _DASHES.search(rest)
            transcript = rest[: e.start()] if e else rest[:4000]
        if not pairs and transcript:
            # No address block (Sendmail 5 and other pre-DSN versions): the transcript's
            # own error lines are the list, "554 <a@b>... 550 Host unknown".
            pairs, hosts = _error_lines(transcript)
            if not pairs and hosts:
                pairs = _by_host(hosts, returned_original(msg, s.text))
            if pairs:
                return [rcpt(a, d, action=action) for a, d in pairs]
        if not pairs and transcript:
            # The SMTP dialogue: refused RCPTs, or every accepted one of a refused DATA.
            dialogue = [("in" if t[:3] == ">>>" else "out", t[3:].strip())
                        for t in (x.strip() for x in transcript.split("\n")[:500])
                        if t[:3] in (">>>", "<<<")]
            pairs = [(a, "") for a, _ in session_failures(dialogue)[1] if usable_address(a)]
        if not pairs and transcript:
            for a in _RCPT.findall(transcript):
                if ADDRESS.fullmatch(a):
                    pairs.append((a, ""))
        out = []
        for a, d in list(pairs):
            # Sendmail aliases: "a@host\n    (expanded from: b@domain)": the address the
            # sender used is b; both are reported (a list manager knows its member as b:
            # flufl.bounce's and Mailman's reading), and b keeps a beside it.
            m = _EXPANDED.search(d or "")
            alias = clean_address(m.group(1)) if m else None
            if usable_address(alias) and alias.lower() not in named:
                named.add(alias.lower())
                pairs.append((alias, d))
                final[alias.lower()] = a
        replies = _replies(transcript) if transcript else []
        sessions = transcript.lower().count("while talking to ")
        for a, d in pairs:
            phase = None
            if d and "reason" in d.lower():
                if replies:
                    phase = _answered(transcript, replies, sessions, a, d)
            elif transcript:
                # "<<< 550 5.1.1 <a>... User unknown" lines naming this address.
                lines = [x.strip() for x in transcript.split("\n") if a.lower() in x.lower()
                         and not x.lstrip().startswith(">>>")]
                lines = lines or [x.strip() for x in transcript.split("\n")
                                  if x.strip()[:3].isdigit() and x.strip()[0] in "45"]
                if lines:
                    d = (d + " " + lines[-1]).strip()
                    # The command sent last before that reply is the one it answered.
                    at = transcript.find(lines[-1])
                    phase = last_command(transcript[:at].lower()) if at > 0 else None
            d = d.replace("(reason:", "").rstrip(")") if d else d
            r = rcpt(a, d, action=action)
            if phase:
                r = r.replace(phase=phase)
            beside = final.get(a.lower())
            out.append(r.replace(original_address=beside) if beside else r)
        return out


def _piped(section: str) -> tuple:
    """(the block without them, [(alias, explanation)]) for items delivered to a program or file.

    Sendmail names such an item by the pipe or path it failed at, and the address the
    sender wrote only in "(expanded from: ...)"::

        "|/usr/local/bin/procmail"
            (reason: Service unavailable)
            (expanded from: <user@example.com>)

    The pipe is no address (``usable_address``); the alias is the recipient that failed.
    Taken out of the block, the item's lines are not read as more explanation of the
    address listed above it (whose reason and alias they are not).  Items start at an
    unindented line; at most 100 are read.
    """
    out = []
    kept = []
    head = None
    item = []
    for line in section.split("\n")[:2000] + [""]:
        if line[:1] not in (" ", "\t") and (line.strip() or head is not None):
            if head is not None and head[:1] in ('"', "|", "/"):
                text = " ".join(x.strip() for x in item)
                m = _EXPANDED.search(text)
                a = clean_address(m.group(1)) if m else None
                if usable_address(a) and len(out) < 100:
                    # The program or file stays in the explanation: it says the failure
                    # was the local delivery's ("|/usr/bin/procmail" ... "Service
                    # unavailable").
                    out.append((a, text))
                item = []
            kept.extend(item)
            head, item = (line.strip() or None), [line]
        else:
            item.append(line)
    kept.extend(item)
    return "\n".join(kept), out


def _replies(transcript: str) -> list:
    """[(offset, lower-cased line)] of a transcript's "<<< 4xx/5xx" replies (at most 500)."""
    out = []
    low = transcript.lower()
    i = low.find("<<< ")
    while i >= 0 and len(out) < 500:
        end = low.find("\n", i)
        line = low[i + 4 : end if end >= 0 else len(low)].strip()
        if line[:1] in ("4", "5"):
            out.append((i, line))
        i = low.find("<<< ", i + 4)
    return out


def _answered(transcript: str, replies: list, sessions: int, address: str, reason: str):
    """The SMTP phase of the reply a "(reason: 554 5.7.1 ...)" line repeats, or None.

    The reply is the transcript's "<<<" line naming the address, else (one session only:
    a "while talking to" per host) the last one with the reason's reply code; the command
    sent last before it is the one it answered (">>> DATA" / "<<< 554 5.7.1 Message
    content rejected": the message was refused, not the address).
    """
    code = find_reply(reason[:300])
    if not code:
        return None
    low = address.lower()
    at = -1
    for i, line in replies:
        if line.startswith(code) and low in line:
            at = i
    if at < 0 and sessions <= 1:
        for i, line in replies:
            if line.startswith(code):
                at = i
    return last_command(transcript[:at].lower()) if at > 0 else None


def _error_lines(transcript: str) -> tuple:
    """([(address, reason)], [(host, reason)]) from a transcript's 4xx/5xx error lines.

    Sendmail writes one line per failed recipient or host, the reply code first and
    "..." after the name::

        554 <user@example.org>... 550 Host unknown (Authoritative answer from name server)
        550 <user@example.co.jp>... User unknown
        421 example.com (smtp)... Deferred: Connection timed out with example.com

    The transcript's own ">>>"/"<<<" SMTP dialogue is left to the caller.
    """
    pairs = []
    hosts = []
    for line in transcript.split("\n")[:500]:
        t = line.strip()
        if len(t) < 8 or t[0] not in "45" or not t[:3].isdigit() or t[3] not in " -":
            continue
        i = t.find("...", 4)
        if i < 0:
            continue
        head = t[4:i].split()
        if not head:
            continue
        reason = t[i + 3 :].strip()
        who = clean_address(head[-1])
        if who and "@" in who:
            if usable_address(who) and all(who.lower() != a.lower() for a, _ in pairs):
                said = _session(transcript, who)
                pairs.append((who, f"{reason} ({said})" if said else reason))
        elif len(head) >= 2 and head[-1].startswith("("):
            hosts.append((head[-2].rstrip(".").lower(), t[4:]))  # "example.com (smtp)"
    return pairs, hosts


def _session(transcript: str, address: str) -> str:
    """The ">>> command / <<< reply" lines of the session that delivered to ``address``.

    They are the evidence of which SMTP phase failed (">>> DATA / <<< 550" is about the
    message).  The session ("While talking to HOST:") is the one whose commands name the
    address, else the one talking to its domain or a host under it.
    """
    domain = address.rsplit("@", 1)[-1].lower()
    by_host = ""
    low = transcript.lower()
    i = low.find("while talking to ")
    n = 0
    while i >= 0 and n < 50:
        n += 1
        nl = low.find("\n", i)
        host = low[i + 17 : nl if nl >= 0 else len(low)].strip().rstrip(":.")
        said = []
        for line in transcript[nl + 1 :].split("\n")[:20] if nl >= 0 else ():
            t = line.strip()
            if not t.startswith((">>>", "<<<")):
                break
            said.append(t)
        text = " ".join(said)
        if address.lower() in text.lower():
            return text
        if not by_host and (host == domain or host.endswith("." + domain)):
            by_host = text
        i = low.find("while talking to ", i + 17)
    return by_host


def _by_host(hosts: list, original: Part | None) -> list:
    """The returned message's recipients at the hosts the transcript failed on.

    "421 example.com (smtp)... Deferred" names the destination, not the address; the
    copy's To:/Cc: addresses at that domain are the ones that were being delivered.
    """
    if original is None:
        return []
    out = []
    for name in ("to", "cc"):
        for m in ADDRESS.finditer((original.get(name) or "")[:2000]):
            a = clean_address(m.group(0))
            domain = a.rsplit("@", 1)[-1].lower() if a else ""
            for host, reason in hosts:
                if domain == host and all(a.lower() != b.lower() for b, _ in out):
                    out.append((a, reason))
    return out


DETECTOR = Sendmail()
