"""What reading the live queue costs (`bounces queue --feed`, the daemon's queue-scan).

    .venv/bin/python bench/live_queue_bench.py [--messages 20000]

A ``postqueue -j`` listing of N queued messages, each with one recipient deferred by a
throttling destination (Yahoo's 421 [TSS04], spread over many domains so R8 judges every
row) and, beside them, N/10 deferred for other reasons (not recorded), fed into a fresh
migrated SQLite store as a first reading, then again (everything known: what every
reading of a queue that does not drain costs), then with N/10 new messages beside the
known ones.  The figure that matters is a re-reading's cost per queued recipient against
a first reading's (a re-reading writes nothing: it must stay a small fraction) and that
both grow linearly (per-recipient costs printed for two sizes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

YAHOO = ("host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from "
         "198.51.100.7 temporarily deferred due to unexpected volume or user complaints - "
         "4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM "
         "command)")
REFUSED = "connect to mx.example.net[192.0.2.9]:25: Connection refused"
ARRIVAL = 1_796_138_533


def listing(n: int, start: int = 0) -> str:
    lines = []
    for i in range(start, start + n):
        lines.append(json.dumps({
            "queue_name": "deferred", "queue_id": f"Q{i:010X}", "arrival_time": ARRIVAL + i,
            "message_size": 2000, "forced_expire": False, "sender": "news@shop.example",
            "recipients": [{"address": f"user{i}@d{i % 500}.example", "delay_reason": YAHOO}],
        }))
        if i % 10 == 0:
            lines.append(json.dumps({
                "queue_name": "deferred", "queue_id": f"R{i:010X}", "arrival_time": ARRIVAL,
                "message_size": 2000, "forced_expire": False, "sender": "news@shop.example",
                "recipients": [{"address": f"x{i}@example.net", "delay_reason": REFUSED}],
            }))
    return "\n".join(lines) + "\n"


def run(n: int) -> dict:
    from bounce_handler import livequeue, settings
    from bounce_handler.store import engine

    tmp = Path(tempfile.mkdtemp(prefix="bh-lq-bench-"))
    cfg = settings.from_dict({"database": {"url": f"sqlite:///{tmp / 'b.db'}"},
                              "intake": {"relay": "bench"}})
    engine.upgrade(cfg)
    text = listing(n)
    out = {}
    for label, body, at in (("first", text, 1000.0), ("again", text, 1060.0),
                            ("plus 10% new", text + listing(n // 10, n), 1120.0)):
        t = time.perf_counter()
        stats = livequeue.feed(cfg, body, ARRIVAL + at, mta="relay.example")
        out[label] = (time.perf_counter() - t, stats)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20000)
    args = ap.parse_args()
    for n in (args.messages // 4, args.messages):
        res = run(n)
        print(f"{n} throttled queued recipients (+{n // 10} deferred otherwise):")
        for label, (secs, s) in res.items():
            per = secs / max(s.deferred, 1) * 1e6
            print(f"  {label:13s} {secs:7.2f} s  {per:6.1f} us/recipient  "
                  f"recorded {s.recorded}, known {s.known}")
        ratio = res["again"][0] / res["first"][0]
        print(f"  re-reading / first reading   {ratio:.2f}x")


if __name__ == "__main__":
    main()
