"""Not silently backing up: bounces that arrived but are not in the store yet.

- Postfix's queue (``postqueue -j``, needs Postfix running): bounces for a bounce
  address *deferred* -- the handler exits 75 or the daemon answers 451, the reason is
  the handler's own line -- or on *hold*.  Postfix retries deferred mail until
  maximal_queue_lifetime (5 days) and then bounces it, and a bounce of a bounce is
  discarded: a problem once the oldest has waited past DEFERRED_PROBLEM_AGE, a
  warning before (one retry after a lock timeout is normal).
- the PostgreSQL spool (pipe, spool mode): batches waiting in new/ longer than
  SPOOL_PROBLEM_AGE (the drain is not running, or PostgreSQL is down), files set aside
  in bad/.
- the LMTP intake: `bounces daemon` answering on its listener.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import time

from bounce_handler.doctor.access import User
from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding
from bounce_handler.doctor.postfix import Postconf

DEFERRED_PROBLEM_AGE = 600
SPOOL_PROBLEM_AGE = 300
MAX_IDS = 20


def _is_bounce_address(address: str, intakes, delimiters: str) -> bool:
    local, _, domain = address.lower().rpartition("@")
    for intake in intakes:
        prefix, _, bdomain = intake.address.rpartition("@")
        if domain != bdomain:
            continue
        if local == prefix or (
            local.startswith(prefix) and local[len(prefix) : len(prefix) + 1] in delimiters
        ):
            return True
    return False


def check_queue(pc: Postconf, intakes, now: float | None = None):
    """(findings, running): bounces deferred or held in Postfix's queue."""
    proc = None
    if master_running(pc):
        proc = pc.run_tool("postqueue", "-j", timeout=60)
    if proc is None or proc.returncode != 0:
        return [
            Finding(
                OK,
                "Postfix is not running: its queue was not checked (remote MTAs keep "
                "bounces queued meanwhile)",
                check="backlog.queue",
            )
        ], False
    now = time.time() if now is None else now
    delimiters = pc.param("recipient_delimiter") + "".join(
        i.settings.verp.recipient_delimiter[:1] for i in intakes
    )
    deferred, held = [], []
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        rcpts = [
            r
            for r in msg.get("recipients", [])
            if _is_bounce_address(r.get("address", ""), intakes, delimiters)
        ]
        if not rcpts:
            continue
        if msg.get("queue_name") == "deferred":
            deferred.append((msg.get("arrival_time", now), msg.get("queue_id"), rcpts))
        elif msg.get("queue_name") == "hold":
            held.append(msg.get("queue_id"))
    findings: list[Finding] = []
    if deferred:
        deferred.sort()
        oldest = now - deferred[0][0]
        reason = next(
            (r.get("delay_reason") for _, _, rs in deferred for r in rs if r.get("delay_reason")),
            "",
        )
        findings.append(
            Finding(
                PROBLEM if oldest >= DEFERRED_PROBLEM_AGE else WARNING,
                f"{len(deferred)} bounce{'s' if len(deferred) > 1 else ''} deferred in Postfix's "
                f"queue, the oldest for {oldest / 60:.0f} min; reason: {reason[:300]}",
                "once the cause that reason names (the handler's own words) is fixed:",
                commands=[pc.cmd("postqueue", "-f")],
                check="backlog.deferred",
            )
        )
    if held:
        ids = held[:MAX_IDS]
        findings.append(
            Finding(
                PROBLEM,
                f"{len(held)} bounce{'s' if len(held) > 1 else ''} on hold in Postfix's queue "
                "(an access table HOLD or `postsuper -h`): never delivered until released",
                None if len(held) <= MAX_IDS else f"and {len(held) - MAX_IDS} more (mailq)",
                commands=[pc.cmd("postsuper", "-H", i) for i in ids if i],
                check="backlog.hold",
            )
        )
    if not findings:
        findings.append(
            Finding(OK, "no bounce deferred or on hold in Postfix's queue", check="backlog.queue")
        )
    return findings, True


def master_running(pc: Postconf) -> bool:
    """Whether the instance's master process is alive (its pid file, as `postfix status`).

    Read directly: postqueue against a stopped Postfix waits ~1 s before saying so.
    """
    try:
        with open(os.path.join(pc.param("queue_directory"), "pid", "master.pid")) as fp:
            os.kill(int(fp.read().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def check_spool(intake, now: float | None = None) -> list[Finding]:
    """Batches waiting in the spool, and files set aside in bad/ (spool mode)."""
    from bounce_handler.store import spool as spool_mod

    cfg = intake.settings
    spool = cfg.database.spool_dir
    now = time.time() if now is None else now
    try:
        waiting = spool_mod.pending(spool)
        oldest = min(
            (os.stat(os.path.join(spool, "new", n)).st_mtime for n in waiting[:1]), default=now
        )
        bad = [n for n in os.listdir(os.path.join(spool, "bad")) if not n.startswith(".")]
    except OSError:
        return []  # access.spool says what is wrong with the tree
    findings: list[Finding] = []
    age = now - oldest
    cfg_arg = f" --config {shlex.quote(cfg.path)}" if cfg.path else ""
    user = intake.user or "nobody"
    if waiting and age >= SPOOL_PROBLEM_AGE:
        findings.append(
            Finding(
                PROBLEM,
                f"{len(waiting)} bounce{'s' if len(waiting) > 1 else ''} waiting in {spool}/new, "
                f"the oldest for {age / 60:.0f} min: `bounces daemon` is not draining "
                "(not running, or PostgreSQL is down)",
                "keep `bounces daemon` running (systemctl enable --now "
                "bounce-handler-daemon); to drain now:",
                commands=[
                    f"runuser -u {shlex.quote(user)} -- {shlex.quote(intake.bounces())}{cfg_arg} "
                    "daemon --drain-once"
                ],
                check="backlog.spool",
                subject=spool,
            )
        )
    else:
        findings.append(
            Finding(
                OK,
                f"spool {spool}: {len(waiting)} waiting"
                + (f", the oldest for {age:.0f} s" if waiting else ""),
                check="backlog.spool",
                subject=spool,
            )
        )
    if bad:
        findings.append(
            Finding(
                WARNING,
                f"{len(bad)} file{'s' if len(bad) > 1 else ''} in {spool}/bad: batches the drain "
                "could not write (the daemon's log says why); they wait for a human",
                "after fixing the cause, move them back to be drained:",
                commands=[f"mv -- {shlex.quote(spool)}/bad/* {shlex.quote(spool)}/new/"],
                check="backlog.spool-bad",
                subject=spool,
            )
        )
    return findings


def check_daemon(pc: Postconf, intake) -> list[Finding]:
    """`bounces daemon` answers LMTP where Postfix's lmtp client connects."""
    from bounce_handler.doctor.routing import lmtp_endpoint

    transport, _, nexthop = (intake.route or "").partition(":")
    svc = intake.service
    if svc is None or not nexthop:
        return []
    kind, where = lmtp_endpoint(pc, nexthop, svc.chrooted())
    why = _greeting(kind, where)
    fix = "start it: systemctl enable --now bounce-handler-daemon (deploy/systemd/)"
    if why:
        return [
            Finding(
                PROBLEM,
                f"`bounces daemon` does not answer LMTP on {kind}:{where} ({why}): Postfix "
                "defers every bounce",
                fix,
                check="backlog.daemon",
                subject=intake.address,
            )
        ]
    findings = [
        Finding(
            OK,
            f"`bounces daemon` answers LMTP on {kind}:{where}",
            check="backlog.daemon",
            subject=intake.address,
        )
    ]
    if kind == "unix":
        # Postfix's lmtp client runs as the mail owner: it must be allowed to connect.
        owner = pc.param("mail_owner") or "postfix"
        try:
            blocked = User(owner).blocked(where, "w")
        except KeyError:
            blocked = None
        if blocked:
            findings.append(
                Finding(
                    PROBLEM,
                    f"Postfix's lmtp client runs as {owner} and cannot connect: {blocked}",
                    f"run `bounces daemon` with a group {owner} is in (the socket is 0660), "
                    "or listen on inet:127.0.0.1:PORT",
                    check="backlog.daemon",
                    subject=intake.address,
                )
            )
    return findings


def _greeting(kind: str, where: str) -> str | None:
    """None when an LMTP server greets with 220 at the endpoint, else why not."""
    try:
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(where)
        else:
            host, _, port = where.rpartition(":")
            s = socket.create_connection((host, int(port)), timeout=5)
    except (OSError, ValueError) as e:
        return getattr(e, "strerror", None) or str(e) or type(e).__name__
    try:
        s.settimeout(5)
        banner = s.recv(512)
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
    except OSError as e:
        return e.strerror or type(e).__name__
    finally:
        s.close()
    if not banner.startswith(b"220"):
        return f"it greets with {banner[:60]!r}, not 220"
    return None
