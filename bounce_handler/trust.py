"""The trust model: what each piece of evidence may cause, decided here and nowhere else.

A bounce is hostile input: anyone can mail the bounce address, and a flag ends in a REJECT
or HOLD line Postfix enforces.  So every event is classified by *what vouches for it*, and
each rule family and each export asks this module whether that is enough.  The judge
(``judge/core.py`` in Python, ``judge/lean.py`` in SQL through ``sql``) and the exports
(``reports/exports.py``) hold no second copy of the decision.  docs/trust.md is the
administrator's version, with the table of what each input can and cannot cause.

Evidence, strongest first (columns of ``bounce_events``)
---------------------------------------------------------
local           ``origin = 'local'``: Postfix's own bounce daemon wrote it on this relay
                (the DSN for a failure here, the notify_classes postmaster copy); its
                recipient and original sender come from our own queue file.  Proven by
                ``origin()`` below, never by anything the message says.
signed          a signed VERP token that verifies (``verified``): ``verify_reason`` NULL
                means it names the row's recipient too ("covered").
sender-signed   the token verifies but covers the sender only: a per-sender token
                (``sender-only``) or a recipient a DSN lists beside the one the token
                names (``not-covered``).
claim           nothing vouches, nothing looks forged: XVERP (``unsigned``), no token
                (``no-token``), or the unsigned half of the two above.
forged-looking  a token that fails (``bad-tag``, ``expired``, ``unknown-key``,
                ``malformed``).
queue           ``origin = 'queue'``: not a message at all but this relay's own live
                queue (``postqueue -j``, read by ``livequeue.py``): a recipient Postfix is
                retrying because the destination throttles us.  The strongest evidence
                for R8, and none for anything else: a queued message says nothing about
                whether its recipient exists or its sender misbehaves.

Per rule family, an event is ``VERIFIED``, a ``CLAIM`` or ``FORGED``:

===========================  ===================================  ==========================
family (rules)               VERIFIED                             CLAIM
===========================  ===================================  ==========================
recipient (R1, R2)           local; signed and covered            unsigned, no-token,
destination (R8)                                                  sender-only, not-covered
sender (R3-R7)               the sender came from a verified      unsigned, no-token
                             token (``sender_source = 'token'``,
                             or NULL on rows older than it);
                             local with the sender from the
                             report's X-Postfix-Sender
                             (``'envelope'``) or from the SASL
                             login in the relay's own Received:
                             header (``'sasl'``, ``sasl_verified``)
===========================  ===================================  ==========================

A queue row is VERIFIED for the destination family and ``NONE`` for the others: never
admitted, whatever ``include_unverified`` says.  Anything else is FORGED.  ``admits`` lets
VERIFIED through always; CLAIM when ``[verp] require_signed`` is false (the default,
``rules.accept_unsigned``); FORGED only when that family's ``include_unverified`` is on.
``strict=True`` asks for VERIFIED alone: the judge marks a flag ``verified`` when its rule
holds on verified evidence only, and only such flags are exported (``reports/exports.py``).

Units of evidence: a failure counts once
----------------------------------------
A row counts for a family only if no earlier row that the family admits is the same
failure (``failure_key``: the DSN and Postfix's postmaster copy of one failure, or any
redelivered copy) or, for token-backed rows that are not local, the same token
(``token_key``: a replayed token is one message we sent, however its bytes vary).  For
the sender family any earlier row of the token shadows it (one message); for the
recipient and destination families only an earlier *covered* row does (a token signed
with that recipient; the claims a DSN lists beside it stay claims, counted as such).
Whichever copy comes first is counted, unless it is not admitted and a later one is:
then the later, stronger copy counts (still once).  The writers store the links
(``duplicate_of``, ``replay_of``) when a row is inserted; ``dedup_sql`` is the predicate.

For the destination family (R8) the unit is one recipient of one queued message: a queue
row has the failure identity of the delay notice Postfix will write about it (so that
notice, and its postmaster copy, are its copies), and the final DSN of the same recipient
of the same message links to it in ``queued_of`` (``queue_key``): it still counts as the
bounce it is everywhere else, but not again for R8.

Failure identity (``failure_key``)
----------------------------------
A SHA-256 over: whether the copy is local, the kind, the recipient as the report names
it, and the best reference to the original the report gives:

1. Postfix's ``X-Postfix-Queue-ID`` with ``Reporting-MTA`` and ``Arrival-Date`` (the DSN
   to the VERP address and the postmaster copy carry the same three; Postfix 3.7,
   measured in tests/e2e/test_postfix_duplicates.py), the arrival read as an instant
   (``arrival_key``) so that ``postqueue -j``'s epoch seconds meet it;
2. else the original's Message-ID with Reporting-MTA and Arrival-Date;
3. else the bounce's own Message-ID (a retransmission of one report);
4. else the message digest (only byte-identical copies are the same).

"local" is part of it so no copy from outside can ever shadow one our relay wrote.

This module is on the pipe's hot path: it imports nothing at module level.
"""

from __future__ import annotations

LOCAL = "local"
NETWORK = "network"
# Not a message: a recipient seen deferred in this relay's live queue (livequeue.py).
QUEUE = "queue"

RECIPIENT = "recipient"
SENDER = "sender"
DESTINATION = "destination"
FAMILIES = (RECIPIENT, SENDER, DESTINATION)
RULE_FAMILY = {
    "R1": RECIPIENT, "R2": RECIPIENT, "R3": SENDER, "R4": SENDER, "R5": SENDER,
    "R6": SENDER, "R7": SENDER, "R8": DESTINATION,
}

VERIFIED = "verified"
CLAIM = "claim"
FORGED = "forged"
# No evidence for the family at all, whatever the settings (a queue row, but for R8).
NONE = "none"

# verify_reason values (verp.REASONS, verp.SENDER_ONLY, and NOT_COVERED below).
NOT_COVERED = "not-covered"
CLAIM_REASONS = ("unsigned", "no-token", "sender-only", NOT_COVERED)
FORGED_REASONS = ("bad-tag", "expired", "unknown-key", "malformed")

# How the sender of a row was attributed (intake.attribute_sender), strongest first.
SENDER_SOURCES = ("token", "envelope", "sasl", "return-path", "from")

# Postfix's own notices: the DSN to the sender has the null sender, the postmaster copy
# double_bounce_sender (default "double-bounce", so that it can never bounce back).
NOTICE_SENDERS = ("", "mailer-daemon", "double-bounce")

# How far into a message the header tests read (hostile input: bounded before any scan).
HEADER_SCAN = 65536


def _options(rules, family: str):
    if family == SENDER:
        return rules.sender
    if family == RECIPIENT:
        return rules.dead
    return rules.dest


# --- one row ------------------------------------------------------------------------------

def strength(row: dict, family: str) -> str:
    """VERIFIED, CLAIM, FORGED or NONE: what vouches for this row's subject in this family."""
    reason = row.get("verify_reason")
    origin = row.get("origin")
    if origin == QUEUE:
        # The relay's own queue file names the recipient's domain and the destination's
        # reply: proof of throttling; and of nothing else (docs/trust.md).
        return VERIFIED if family == DESTINATION else NONE
    local = origin == LOCAL
    if family == SENDER:
        source = row.get("sender_source")
        # NULL: a row from before sender_source existed (or an old spool file), whose
        # sender came from the token whenever that verified.
        if row.get("verified") and source in ("token", None):
            return VERIFIED
        if local and (source == "envelope" or (source == "sasl" and row.get("sasl_verified"))):
            return VERIFIED
    elif local or (row.get("verified") and reason is None):
        return VERIFIED
    return CLAIM if reason in CLAIM_REASONS else FORGED


def admits(row: dict, family: str, rules, strict: bool = False) -> bool:
    """Whether this row may count for the family's rules (VERIFIED alone when strict)."""
    s = strength(row, family)
    if s == VERIFIED:
        return True
    if strict or s == NONE:
        return False
    if _options(rules, family).include_unverified:
        return True
    return s == CLAIM and rules.accept_unsigned


def lenient(rules, family: str) -> bool:
    """Whether anything but VERIFIED rows can count for this family (else strict = as is)."""
    return rules.accept_unsigned or bool(_options(rules, family).include_unverified)


def token_shadows(row: dict, family: str) -> bool:
    """Whether an earlier row of the same token makes this one a replay for the family."""
    if not row.get("replay_of"):
        return False
    return family == SENDER or (row.get("verified") and row.get("verify_reason") is None)


# --- the same, in SQL (judge/lean.py's window counts) -------------------------------------

def _verified_sql(family: str, params: list, p: str) -> str:
    if family == SENDER:
        params.extend((True, "token", LOCAL, "envelope", "sasl", True))
        return (
            f"(({p}verified = ? AND ({p}sender_source = ? OR {p}sender_source IS NULL)) OR "
            f"({p}origin = ? AND ({p}sender_source = ? OR "
            f"({p}sender_source = ? AND {p}sasl_verified = ?))))"
        )
    if family == DESTINATION:
        params.extend((LOCAL, QUEUE, True))
        return f"({p}origin IN (?, ?) OR ({p}verified = ? AND {p}verify_reason IS NULL))"
    params.extend((LOCAL, True))
    return f"({p}origin = ? OR ({p}verified = ? AND {p}verify_reason IS NULL))"


def sql(family: str, rules, params: list, strict: bool = False, p: str = "") -> str:
    """The SQL twin of ``admits``: a predicate on bounce_events (alias prefix `p`)."""
    if family == DESTINATION:
        return _admits_sql(family, rules, params, strict, p)
    # A queue row is no evidence here, whatever else it says or the settings say.
    params.append(QUEUE)
    return f"({p}origin IS NULL OR {p}origin != ?) AND " + _admits_sql(
        family, rules, params, strict, p)


def _admits_sql(family: str, rules, params: list, strict: bool, p: str) -> str:
    if not strict and _options(rules, family).include_unverified:
        return "1 = 1"
    verified = _verified_sql(family, params, p)
    if strict or not rules.accept_unsigned:
        return verified
    params.extend(CLAIM_REASONS)
    marks = ", ".join("?" * len(CLAIM_REASONS))
    return f"({verified} OR {p}verify_reason IN ({marks}))"


def dedup_sql(family: str, rules, params: list, strict: bool = False) -> str:
    """Counted rows only: no earlier admitted copy of the failure, no earlier token unit.

    On an unaliased ``bounce_events`` (the judge's window queries); the subqueries read
    ix_bounce_events_failure_key_id and ix_bounce_events_token_key_id, and only for the
    rows that have a link at all.  For R8 also none whose recipient of that message was
    seen in the live queue first (``queued_of``: a queue row always counts for R8).
    """
    inner = sql(family, rules, params, strict, "p.")
    out = (
        "(duplicate_of IS NULL OR NOT EXISTS (SELECT 1 FROM bounce_events p "
        "WHERE p.failure_key = bounce_events.failure_key AND p.id < bounce_events.id "
        f"AND {inner}))"
    )
    if family == SENDER:
        return out + " AND replay_of IS NULL"
    if family == DESTINATION:
        out += " AND queued_of IS NULL"
    params.append(True)
    return out + (
        " AND (replay_of IS NULL OR NOT (verified = ? AND verify_reason IS NULL) OR "
        "NOT EXISTS (SELECT 1 FROM bounce_events p WHERE p.token_key = bounce_events.token_key "
        "AND p.id < bounce_events.id AND p.verify_reason IS NULL))"
    )


# --- where a message came from ------------------------------------------------------------

def origin(envelope, raw: bytes) -> str | None:
    """Where the message came from: 'local', 'network' or None (not known).

    'local' when this relay's bounce daemon wrote the message, 'network' when an SMTP or
    LMTP client sent it to us.

    Postfix 3.7, measured (tests/e2e/test_postfix_duplicates.py): pipe(8)'s
    ``${client_address}`` and ``${client_protocol}`` are empty for a notice the bounce
    daemon queued, and for a local submission or a local(8) forward of one; they name
    the client for anything received over SMTP, also after a local(8) alias forwarded
    it.  The relay's own top Received: header then tells the bounce daemon
    (``by HOST (Postfix) id QID;``) from pickup (``(Postfix, from userid N)``); a local(8)
    forward has that same header too, but also a Delivered-To: below it (its loop
    guard), which a fresh notice never has.  Without the macro in master.cf
    (``client_address`` None: an old master.cf, LMTP, `bounces import`) nothing is known
    to be local, and the Received: header alone is no proof (a stranger's message
    forwarded by local(8) carries it).
    """
    client = envelope.client_address
    if client is None:
        return None
    if client.strip() or (envelope.client_protocol or "").strip():
        return NETWORK
    sender = (envelope.sender or "").strip().strip("<>").lower()
    if sender not in NOTICE_SENDERS and sender.rpartition("@")[0] not in NOTICE_SENDERS:
        return None
    return LOCAL if _bounce_daemon_headers(raw, envelope.queue_id) else None


_PIPE_HEADERS = (b"return-path", b"delivered-to", b"x-original-to")


def _bounce_daemon_headers(raw: bytes, queue_id: str | None) -> bool:
    """Whether the headers are those of a notice Postfix's bounce daemon just queued.

    The message starts (after pipe(8)'s D, O and R lines) with the Received: header a
    fresh notice gets from cleanup(8), and carries no Delivered-To: of its own.
    """
    head = raw[:HEADER_SCAN]
    end = head.find(b"\n\n")
    end2 = head.find(b"\r\n\r\n")
    if end < 0 or (0 <= end2 < end):
        end = end2
    if end < 0:
        return False
    fields = []  # (name, unfolded value) of the header block
    for line in head[:end].split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            return False
        fields.append((name.strip().lower(), [value]))
    i = 0
    while i < len(fields) and i < 3 and fields[i][0] in _PIPE_HEADERS:
        i += 1
    if i >= len(fields) or fields[i][0] != b"received":
        return False
    words = b" ".join(fields[i][1]).split()
    if len(words) < 5 or words[0] != b"by" or words[2] != b"(Postfix)" or words[3] != b"id":
        return False
    if queue_id and words[4].rstrip(b";").decode("ascii", "replace") != queue_id:
        return False
    return all(name != b"delivered-to" for name, _ in fields[i + 1 :])


# --- identities ---------------------------------------------------------------------------

def arrival_key(arrival) -> str:
    """An arrival time as identities compare it: the instant, whatever the zone.

    ``arrival`` is epoch seconds (``postqueue -j``'s ``arrival_time``) or a date as a
    report writes it (Postfix's ``Arrival-Date: Tue,  1 Dec 2026 15:22:13 +0000 (UTC)``,
    in the local zone of the host's bounce daemon, which a reader of the queue cannot
    know).  A date that does not parse is compared as its text, white space collapsed.
    """
    if isinstance(arrival, int) and not isinstance(arrival, bool):
        return f"@{arrival}"
    text = " ".join((arrival or "").split())
    from bounce_handler.judge.utc import mail_date_seconds

    seconds = mail_date_seconds(text)
    return text if seconds is None else f"@{seconds}"


def queue_reference(mta: str, queue_id: str, arrival) -> tuple:
    """The reference to a message in a Postfix queue: its host, queue ID and arrival.

    ``mta`` is the host's ``myhostname`` (what Postfix writes in Reporting-MTA),
    ``arrival`` epoch seconds or the Arrival-Date text (``arrival_key``): a reader of the
    live queue (``postqueue -j``, livequeue.py) gets the reference of the delay notice
    Postfix later sends about the same message.
    """
    return ("q", " ".join(mta.lower().split()), queue_id, arrival_key(arrival))


def report_reference(result, digest: str) -> tuple:
    """The best reference to the original a parsed report gives (module docstring, 1-4)."""
    mta = " ".join((result.reporting_mta or "").lower().split())
    arrival = arrival_key(result.arrival_date)
    original = result.original.message_id
    if result.queue_id and mta:
        return queue_reference(mta, result.queue_id, arrival)
    if original:
        return ("m", original.strip(), mta, arrival)
    if result.message_id:
        return ("n", result.message_id.strip())
    return ("d", digest)


def failure_identity(kind: str, address: str, local: bool, reference: tuple) -> str:
    """The failure identity: one kind of failure of one recipient of one message.

    Reusable beyond reports (a queue entry: ``queue_reference``); 32 hex digits.
    """
    try:
        from _sha256 import sha256  # the builtin: no OpenSSL load on the hot path
    except ImportError:  # pragma: no cover - interpreters without the builtin module
        from hashlib import sha256

    parts = ("f1", LOCAL if local else "other", kind, address.strip().lower(), *reference)
    data = "\0".join(parts).encode("utf-8", "surrogateescape")
    return sha256(data).hexdigest()[:32]


def failure_key(kind: str, address: str, local: bool, result, digest: str) -> str:
    """The failure identity of one recipient of a parsed report."""
    return failure_identity(kind, address, local, report_reference(result, digest))


# --- what may become a flag subject or an export key --------------------------------------

_LOCAL_SPECIALS = frozenset('()<>[]:;@\\,"')


def valid_address(address: str | None) -> bool:
    """A complete address: a plain local part, "@", a host name of two labels or more.

    Not a bare domain, a bare local part, ``user@``, a quoted local part or an address
    literal: access(5) reads every one of those as something else (a domain, a
    ``user@`` wildcard) or cannot hold it.  UTF-8 (RFC 6531) is allowed here; the
    exports add their own ASCII test.
    """
    if not address or len(address) > 320:
        return False
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(domain) > 253:
        return False
    if local[0] == "." or local[-1] == "." or ".." in local:
        return False
    # Whole-string tests rather than a loop per character (the judge asks this for every
    # event): the only printable character that is white space is " " (checked over all
    # of Unicode by tests/test_trust.py).
    if not local.isprintable() or " " in local or not _LOCAL_SPECIALS.isdisjoint(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False  # a bare host name, or an IP address
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        # Letters, digits and "-" only ("-" is not first, so something is left).
        if not label.replace("-", "").isalnum():
            return False
    return True


def valid_login(login: str | None) -> bool:
    """A SASL login name usable as a check_sasl_access key: printable, no white space."""
    if not login or len(login) > 255 or login[0] == "#":
        return False
    return login.isprintable() and not any(c.isspace() for c in login)


def export_key_problem(value: str, key: str = "address") -> str | None:
    """Why `value` must not be an access(5) key of an export, or None when it may.

    access(5) lookups for an address try ``user@domain``, then ``domain`` (and its parent
    domains), then ``user@``: any key that is not a complete address is a wildcard for
    many addresses.  postmaster must always be reachable (RFC 5321 section 4.5.1).
    ``key`` is "address" (check_recipient_access, check_sender_access) or "sasl"
    (check_sasl_access: the login name as is).
    """
    if not value or value != value.strip() or any(c.isspace() for c in value):
        return "empty or has white space"
    if not value.isascii():
        return "not ASCII"
    if value[0] == "#":
        return "would be a comment line"
    if key == "sasl":
        return None if valid_login(value) else "not a valid SASL login name"
    if not valid_address(value):
        return ("not a complete address (access(5) would read it as a domain, a local part "
                "or a user@ wildcard)")
    if value.rpartition("@")[0].lower() == "postmaster":
        return "postmaster must always be reachable (RFC 5321 section 4.5.1)"
    return None
