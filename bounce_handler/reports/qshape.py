"""`bounces queue`: the live Postfix queue by destination domain and age, as qshape shows it.

Input is ``postqueue -j`` (Postfix >= 3.1): one JSON object per queued message, e.g.

    {"queue_name": "deferred", "queue_id": "4Xyz1A2B3C", "arrival_time": 1764000000,
     "message_size": 1834, "forced_expire": false, "sender": "news@shop.example",
     "recipients": [{"address": "bob@yahoo.com",
                     "delay_reason": "host mx.yahoo.com[192.0.2.7] said: 421 4.7.0 [TSS04]
                      Messages from 198.51.100.7 temporarily deferred ... (in reply to
                      MAIL FROM command)"}]}

Like qshape(1), recipients are counted (a message to three yahoo.com addresses is three)
into age buckets whose bounds double: 5, 10, 20, ... 1280 minutes and older.  Each
deferral reason is run through ``classify`` (the same function the pipe uses on bounces)
and reduced to a signature without addresses and numbers that vary, so "421 4.7.0 [TSS04]
Messages from * temporarily deferred" from four hundred deliveries is one line with its
count, next to the bounce-side throttled-destination flags.
"""

from __future__ import annotations

import re
import time

# Reading postqueue's lines and classifying a delay reason is livequeue.py's (the same
# code records the throttling deferrals for rule R8): one definition of each.
from bounce_handler.livequeue import HOST_SAID as _HOST_SAID
from bounce_handler.livequeue import explain, parse_lines

__all__ = ["bounds", "bucket_labels", "explain", "parse_lines", "shape", "signature"]

# qshape's defaults: first bucket 5 minutes (-t 5), 10 buckets (-b 10), each twice the last.
FIRST_BUCKET_MINUTES = 5
BUCKETS = 10

_IN_REPLY = re.compile(r"\s*\(in reply to [^)]*\)\s*$", re.IGNORECASE)
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_IPV6 = re.compile(r"\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b", re.IGNORECASE)
_BRACKETED_IP = re.compile(r"\[(?:\*|[0-9a-f:.]+)\]", re.IGNORECASE)
_EMAIL = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")
_LONG_NUMBER = re.compile(r"\b\d{5,}\b")


def bounds() -> list[int]:
    """Upper bounds of the age buckets in minutes: [5, 10, 20, ..., 1280]."""
    return [FIRST_BUCKET_MINUTES * 2**i for i in range(BUCKETS - 1)]


def bucket_labels() -> list[str]:
    """Column labels: '5', '10', ... '1280', '1280+' (qshape's header)."""
    b = bounds()
    return [str(x) for x in b] + [f"{b[-1]}+"]


def signature(reason: str) -> str:
    """A deferral reason without what varies per delivery (IPs, addresses, long numbers)."""
    s = " ".join((reason or "").split())
    s = _HOST_SAID.sub("", s)
    s = _IN_REPLY.sub("", s)
    s = _EMAIL.sub("*", s)
    s = _IPV4.sub("*", s)
    s = _IPV6.sub(lambda m: "*" if m.group(0).count(":") >= 2 and len(m.group(0)) > 3
                  else m.group(0), s)
    s = _BRACKETED_IP.sub("[*]", s)
    s = _LONG_NUMBER.sub("*", s)
    return s[:100]


def shape(messages: list[dict], now: float | None = None, *, queue: str = "deferred",
          by: str = "recipient", top: int = 20) -> dict:
    """The qshape table and the deferral reasons, as plain values."""
    now = time.time() if now is None else now
    b = bounds()
    labels = bucket_labels()
    domains: dict[str, list[int]] = {}
    reasons: dict[tuple[str, str, str], dict] = {}
    messages_counted = 0
    for msg in messages:
        if queue != "all" and msg.get("queue_name") != queue:
            continue
        messages_counted += 1
        age_min = max(0.0, (now - float(msg.get("arrival_time") or now)) / 60)
        col = next((i for i, x in enumerate(b) if age_min < x), len(b))
        for r in msg.get("recipients") or []:
            # qshape -s: the same recipient count, keyed by the sender's domain instead.
            dom = _domain(msg.get("sender") or "" if by == "sender" else r.get("address") or "")
            row = domains.setdefault(dom, [0] * len(labels))
            row[col] += 1
            why = r.get("delay_reason")
            if why:
                status, reason = explain(why)
                sig = signature(why)
                k = (dom, reason, sig)
                e = reasons.setdefault(k, {"domain": dom, "reason": reason, "status": status,
                                           "signature": sig, "count": 0})
                e["count"] += 1
    rows = [{"domain": d, "total": sum(c), "buckets": c} for d, c in domains.items()]
    rows.sort(key=lambda r: (-r["total"], r["domain"]))
    total = [sum(r["buckets"][i] for r in rows) for i in range(len(labels))]
    reason_rows = sorted(reasons.values(), key=lambda e: (-e["count"], e["domain"],
                                                          e["signature"]))
    return {
        "queue": queue,
        "by": by,
        "messages": messages_counted,
        "buckets_minutes": labels,
        "total": {"total": sum(total), "buckets": total},
        "domains": rows[:top],
        "more_domains": max(0, len(rows) - top),
        "reasons": reason_rows[:top],
    }


def _domain(address: str) -> str:
    address = address.strip().strip("<>")
    if not address:
        return "MAILER-DAEMON"  # qshape's name for the null sender
    return address.rpartition("@")[2].lower() if "@" in address else address.lower()
