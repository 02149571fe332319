"""Genuine notices from real MTAs: Postfix, Exim, OpenSMTPD, Sendmail, Courier, DMA, live.

Each MTA runs in a lab of its own (tests/support/mta: private namespaces, a fake DNS and
fake remote SMTP servers on the lab's loopback), and gets one message per failure case of
issue 15 (tests/support/mta/lab.CASES).  What it sends back to the senders is read by the
project's parser and, once per MTA, by the real ``bounce-handler`` into a SQLite store;
tests/mta/expectations.py says what each notice means.  All the labs run at once, once
per session (~50-60 s, the queue lifetime of the 4xx-until-expiry cases plus start-up).

Skipped when an MTA cannot be fetched or the machine cannot make namespaces (not root);
failed instead under BOUNCE_HANDLER_REQUIRE_SERVICES=1 (.ci/run).  The same notices are kept
in tests/data/real/ (tests/mta/capture.py) and checked without MTAs by test_real_corpus.py.
"""

from __future__ import annotations

import os
import shutil

import pytest

from bounce_handler.parse import parse
from tests.mta.capture import drivers, split
from tests.mta.expectations import (
    FAILURE_CASES,
    KNOWN_DEFECTS,
    MTAS,
    UNSUPPORTED,
    WARNING_REASON,
    final,
    must_warn,
)
from tests.support.services import require

pytestmark = [pytest.mark.mta, pytest.mark.slow]


def lab_unavailable() -> str | None:
    """Why this machine cannot run MTA labs (None when it can)."""
    if os.geteuid() != 0:
        return "MTA labs need root (namespaces, mounts, the MTAs' own users)"
    for tool in ("unshare", "nsenter", "setpriv", "dpkg-deb", "ldd"):
        if shutil.which(tool) is None:
            return f"{tool} not found (util-linux / dpkg / libc-bin)"
    return None


def selected_mtas(session) -> list[str]:
    """The MTAs the selected tests of this module ask for (``-k exim`` starts only Exim)."""
    wanted = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec and item.get_closest_marker("mta") and "mta" in callspec.params:
            wanted.add(callspec.params["mta"])
    return [m for m in MTAS if m in wanted]


@pytest.fixture(scope="session")
def mta_runs(request):
    """Every selected MTA put through every case, once (run_all), then torn down."""
    from tests.support.mta.drivers import run_all

    why = lab_unavailable()
    unavailable: dict[str, str] = {}
    runs = {}
    if why is None:
        ready = []
        for d in drivers(selected_mtas(request.session)):
            reason = d.unavailable()
            if reason:
                unavailable[d.name] = reason
            else:
                ready.append(d)
        runs = run_all(ready) if ready else {}
    try:
        yield runs, unavailable, why
    finally:
        for run in runs.values():
            run.lab.destroy()


def get_run(mta_runs, mta: str):
    runs, unavailable, why = mta_runs
    if why:
        require("MTA lab", why)
    if mta in unavailable:
        require(mta, unavailable[mta])
    run = runs[mta]
    if run.error:
        pytest.fail(f"{mta} did not get through the cases: {run.error}\n{run.diagnostics()}")
    return run


def rows(result) -> list[tuple]:
    return [(r.address, r.status, r.reason, r.hard) for r in result.recipients]


def params(cases):
    out = []
    for mta in MTAS:
        for case in cases:
            marks = []
            if (mta, case) in KNOWN_DEFECTS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[(mta, case)]))
            out.append(pytest.param(mta, case, id=f"{mta}-{case}", marks=marks))
    return out


@pytest.mark.parametrize("mta,case", params(FAILURE_CASES))
def test_failure_notice(mta_runs, mta, case):
    run = get_run(mta_runs, mta)
    _warnings, finals = split(mta, run.by_case(case))
    assert finals, f"{mta} sent no final notice for {case}\n{run.diagnostics()}"
    got = []
    for n in finals:
        result = parse(n.raw)
        assert result.error is None
        assert result.kind == "bounce", (n.path, rows(result))
        got += rows(result)
    assert sorted(got) == sorted(final(mta, case)), f"{mta} {case}: {got}"


@pytest.mark.parametrize("mta", MTAS)
def test_delay_warnings_are_not_failures(mta_runs, mta):
    run = get_run(mta_runs, mta)
    warned = set()
    for n in run.notices:
        warnings, _ = split(mta, [n])
        if not warnings:
            continue
        result = parse(n.raw)
        assert result.kind == "delay", (n.path, rows(result))
        assert result.recipients, n.path
        for r in result.recipients:
            assert r.hard is None and r.action == "delayed", (n.path, rows(result))
            if n.case in WARNING_REASON:
                assert r.reason == WARNING_REASON[n.case], (n.path, rows(result))
        warned.add(n.case)
    for case in must_warn(mta):
        assert case in warned, f"{mta} sent no delay warning for {case}\n{run.diagnostics()}"


@pytest.mark.parametrize("mta", [m for m in MTAS if (m, "success") not in UNSUPPORTED])
def test_success_notice_is_not_a_failure(mta_runs, mta):
    run = get_run(mta_runs, mta)
    notices = run.by_case("success")
    assert len(notices) == 1, f"{mta}: NOTIFY=SUCCESS gave {len(notices)} notices"
    result = parse(notices[0].raw)
    assert result.kind == "delivery"
    assert [(r.address, r.hard) for r in result.recipients] == [("ok@rcpt.test", None)]
    assert result.recipients[0].action in ("relayed", "delivered")


def _events(store) -> list[tuple]:
    return store.query(
        "SELECT e.kind, e.recipient, e.status, e.reason, e.hard FROM bounce_events e "
        "ORDER BY e.id")


@pytest.mark.parametrize("mta", MTAS)
def test_pipe_records_failures_only(mta_runs, mta, store):
    """Every notice through the real bounce-handler: a failure is recorded as the parser
    reads it, the dead address as hard; warnings and the success notice add no bounce."""
    run = get_run(mta_runs, mta)
    for n in run.notices:
        before = _events(store)
        proc = store.handler(input=n.raw)
        assert proc.returncode == 0, (n.path, proc.stdout, proc.stderr)
        added = _events(store)[len(before):]
        warnings, finals = split(mta, [n])
        if n.case == "success":
            assert added == [], (n.path, added)
        elif warnings:
            assert [a for a in added if a[0] == "bounce"] == [], (n.path, added)
        else:
            result = parse(n.raw)
            hard = {True: 1, False: 0, None: None}
            assert added == [(result.kind, r.address, r.status, r.reason, hard[r.hard])
                             for r in result.recipients], n.path
        if n.case == "unknown":
            assert added == [("bounce", "unknown@rcpt.test", "5.1.1", "userunknown", 1)]
    kinds = {row[0] for row in _events(store)}
    assert "bounce" in kinds
