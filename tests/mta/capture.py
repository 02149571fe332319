"""Regenerate tests/data/real/ from live MTAs: ``python -m tests.mta.capture [MTA ...]``.

``--cases a,b`` writes only those cases' files (the labs still run every case), so adding
a case does not rewrite the notices already kept.

Runs the labs (tests/support/mta) and saves, per MTA and case, the final notice as
``<mta>_<case>.eml`` (a second one, where the MTA splits a case, as ``<mta>_<case>_2.eml``)
and the first delay warning (if the MTA sent one) as ``<mta>_<case>_delay.eml``, byte for
byte as the fake remote received them.
tests/mta/test_real_corpus.py reads them against tests/mta/expectations.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.mta.expectations import MTAS, UNSUPPORTED, is_warning

DATA = Path(__file__).resolve().parent.parent / "data" / "real"


def drivers(names):
    from tests.support.mta.courier import CourierDriver
    from tests.support.mta.dma import DMADriver
    from tests.support.mta.exim import EximDriver
    from tests.support.mta.opensmtpd import OpenSMTPDDriver
    from tests.support.mta.postfix import PostfixDriver
    from tests.support.mta.sendmail import SendmailDriver

    known = {"postfix": PostfixDriver, "exim": EximDriver, "opensmtpd": OpenSMTPDDriver,
             "sendmail": SendmailDriver, "courier": CourierDriver, "dma": DMADriver}
    return [known[n]() for n in names]


def split(mta: str, notices) -> tuple[list, list]:
    """(warnings, finals) among one case's notices (see expectations.is_warning)."""
    warnings = [n for n in notices if is_warning(mta, n.raw)]
    return warnings, [n for n in notices if not is_warning(mta, n.raw)]


def main(argv: list[str]) -> int:
    from tests.support.mta.drivers import run_all
    from tests.support.mta.lab import CASES

    only = None
    if argv[:1] == ["--cases"] and len(argv) > 1:
        only = set(argv[1].split(","))
        argv = argv[2:]
        unknown = only - {c.name for c in CASES}
        if unknown:
            print(f"unknown cases: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    wanted = drivers(argv or MTAS)
    for d in wanted:
        why = d.unavailable()
        if why:
            print(f"{d.name}: {why}", file=sys.stderr)
            return 1
    runs = run_all(wanted)
    DATA.mkdir(parents=True, exist_ok=True)
    status = 0
    for name, run in runs.items():
        if run.error:
            print(f"{name}: {run.error}\n{run.diagnostics()}", file=sys.stderr)
            status = 1
            continue
        for case in CASES:
            if only is not None and case.name not in only:
                continue
            if (name, case.name) in UNSUPPORTED:
                continue
            warnings, finals = split(name, run.by_case(case.name))
            if not finals:
                print(f"{name}: no final notice for {case.name}", file=sys.stderr)
                status = 1
                continue
            for i, n in enumerate(finals, 1):
                suffix = "" if i == 1 else f"_{i}"
                (DATA / f"{name}_{case.name}{suffix}.eml").write_bytes(n.raw)
            if warnings:
                (DATA / f"{name}_{case.name}_delay.eml").write_bytes(warnings[0].raw)
        print(f"{name} ({run.version}): {len(run.notices)} notices in {run.seconds:.0f} s")
        run.lab.destroy()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
