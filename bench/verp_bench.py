"""What VERP costs the pipe: a cold process that decodes one signed token, against one that
decodes an XVERP token (no key file, no SHA-256), against a bare interpreter, in one run.

    .venv/bin/python bench/verp_bench.py [--runs 40]

Each run is a fresh process (what pipe(8) starts per bounce) that imports
bounce_handler.verp and decodes one token; runs alternate so machine noise hits all three
alike.  Also prints the warm per-call cost of decode (what the LMTP daemon pays).
Targets: signed/bare <= 1.15 (the whole pipe must stay <= 2x bare), warm decode < 50 us.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SNIPPET = """
import time
from bounce_handler import settings, verp
cfg = settings.from_dict({{"verp": {{"key_file": {keys!r}, "domain": "relay.example"}}}})
r = verp.decode({ext!r}, cfg, time.time())
assert r.reason in (None, "unsigned"), r
"""


def timed(argv) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    from bounce_handler import settings, verp

    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, "verp.keys")
        with open(keys, "w") as fp:
            fp.write("a " + os.urandom(32).hex() + "\n")
        cfg = settings.from_dict({"verp": {"key_file": keys, "domain": "relay.example"}})
        now = time.time()
        ext = verp.split_address(verp.encode("alice@example.com", "newsletter", cfg, now), cfg)
        py = sys.executable
        cmds = {
            "bare": [py, "-c", "pass"],
            "xverp": [py, "-c", SNIPPET.format(keys=keys, ext="alice=example.com")],
            "signed": [py, "-c", SNIPPET.format(keys=keys, ext=ext)],
        }
        for argv in cmds.values():  # warm the page cache and .pyc files
            timed(argv)
        times = {k: [] for k in cmds}
        for _ in range(args.runs):
            for k, argv in cmds.items():
                times[k].append(timed(argv))
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        n = 20000
        t = time.perf_counter()
        for _ in range(n):
            verp.decode(ext, cfg, now)
        warm = (time.perf_counter() - t) / n * 1e6
    print(", ".join(f"{k} {v:.1f} ms" for k, v in med.items()))
    xverp, signed = med["xverp"] / med["bare"], med["signed"] / med["bare"]
    print(f"ratio xverp/bare {xverp:.2f}, signed/bare {signed:.2f}")
    print(f"warm decode of a signed token: {warm:.1f} us")


if __name__ == "__main__":
    main()
