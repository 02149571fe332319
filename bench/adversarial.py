"""Worst inputs per pattern and scanner on the intake path, timed as whole messages.

    .venv/bin/python bench/adversarial.py [--size 65536] [--keep 2] [--only NAME] [--big]

For every lazyre pattern of every registered detector and of classify, and every
hand-written scanner (tests/hostile/adversary.py enumerates them and derives the attacks
from each pattern's own structure), the slowest attacks found on the pattern alone are
embedded in every place a detector reads (Subject, text notice, the section after a
detector's heading, HTML notice, delivery-status fields, headers, the returned original)
and the *whole message* is parsed; the table gives, per target, the worst row: input,
place, its time and a plain message's of the same size and shape (best of 3), and the
ratio (target <= 5x).  --big adds ~10 MiB single lines in each place (target <= 2 s).

tests/hostile/test_adversarial.py asserts the same with generous bounds; the figures
that matter are these, run on a quiet machine.
"""

from __future__ import annotations

import argparse
import compileall
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=65536, help="attack size in characters")
    ap.add_argument("--keep", type=int, default=2, help="worst attacks kept per target")
    ap.add_argument("--only", default="", help="targets whose name contains this")
    ap.add_argument("--big", action="store_true", help="also the 10 MiB single lines")
    ap.add_argument("--no-table", action="store_true", help="skip the per-target table")
    args = ap.parse_args()

    import bounce_handler

    compileall.compile_dir(os.path.dirname(bounce_handler.__file__), quiet=1)
    from tests.hostile import adversary as A

    parse = A._parse()
    if not args.no_table:
        targets = [t for t in A.all_targets() if args.only in t.name]
        cache: dict = {}
        print(f"{'target':44s} {'ratio':>6s} {'worst':>9s} {'plain':>8s}  {'place':8s} input")
        over = 0
        started = time.perf_counter()
        for t in targets:
            rows = A.evaluate(t, args.size, cache, keep=args.keep)
            w = max(rows, key=lambda r: r.ratio)
            over += w.ratio > 5
            print(f"{t.name[:44]:44s} {w.ratio:5.1f}x {w.seconds * 1e3:7.1f}ms "
                  f"{w.plain * 1e3:6.1f}ms  {w.place:8s} {w.label[:70]}", flush=True)
        print(f"{len(targets)} targets, {over} over 5x, "
              f"{time.perf_counter() - started:.0f} s")
    if args.big:
        print(f"\n{'~10 MiB single line':26s} {'time':>8s} {'plain':>8s} {'ratio':>6s}")
        plain = {}
        for place in A.BIG_PLACES:
            p = A.big_message(place, A.PROSE)
            parse(p[:4000])
            plain[place] = A.timed(parse, p, repeat=2)
            for name, unit in A.BIG_UNITS.items():
                msg = A.big_message(place, unit)
                t = A.timed(parse, msg, repeat=2)
                print(f"{place + ' / ' + name:26s} {t:7.2f}s {plain[place]:7.2f}s "
                      f"{t / plain[place]:5.1f}x", flush=True)


if __name__ == "__main__":
    main()
