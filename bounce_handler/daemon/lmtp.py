"""LMTP intake: bounces over a socket, with no process per message (RFC 2033).

A service of ``bounces daemon`` when ``[daemon] lmtp_listen`` is set
(``unix:/var/spool/postfix/private/bounce-lmtp`` or ``inet:127.0.0.1:10028``).  Postfix
routes the bounce address to it with a transport map entry such as
``bounces@relay.example lmtp:unix:private/bounce-lmtp`` (see deploy/spool-and-lmtp.md).

One code path: after the message is read, every recipient goes through
``intake.process`` exactly as a pipe invocation does; only the envelope comes from the
LMTP transaction (MAIL FROM, and RCPT TO ``bounces+EXT@relay`` for the VERP extension)
instead of argv.  RFC 2033 section 4.2 makes the server answer DATA once per accepted
recipient, so each recipient gets its own reply, mapped from the pipe's exit table:

    recorded / duplicate / ignored / quarantined   250 2.0.0 (Postfix deletes its copy)
    tempfail (store down, locked, full ...)         451 4.3.0 <why> (Postfix retries)

Never a 5xx for a message we can take: Postfix's lmtp client bounces a message on 5xx,
and the bounce of a bounce (null sender) is discarded -- lost, exactly like a pipe exit
other than 0/75.  So aiosmtpd's line limit is as large as a message (its default of 1001
octets would answer a long header line with one ``500 Line too long``).

The one 5xx is size, the pipe's budget (issue 14: 600 MiB of DATA used to be answered
250 after the daemon held 1.27 GiB): ``[intake] max_message_bytes`` is announced in
LHLO (``SIZE``, RFC 1870), a ``MAIL FROM ... SIZE=`` above it is refused, and DATA
beyond it is read and discarded (never buffered) and answered ``552 5.3.4`` once per
recipient.  Postfix never offers such a message when its own ``message_size_limit``
(10240000 by default) is at most ``max_message_bytes`` (10 MiB by default): keep it so
(deploy/spool-and-lmtp.md), since Postfix turns the 552 into a bounce.

Time: a message over ``INLINE_PARSE_MAX`` (64 KiB) is parsed in a worker process
(daemon/workers.py) with a limit, ``[daemon] lmtp_time_limit``; a parse past it is
stopped and the message quarantined with why (``reason = time-limit``: kept with its
bytes, not retried, since a retry would take as long again).  A worker that dies while
parsing (killed from outside) defers (451).  Smaller messages, most bounces, parse in the
daemon's threads: their parse is milliseconds (see INLINE_PARSE_MAX).

Writing: with SQLite, messages from all connections are committed in groups by one
writer thread (``SqliteGroupCommitter``): while one transaction's fsync runs, the next
messages queue up and go into the next transaction together.  Each message still gets
its reply only after the transaction holding it committed, and each keeps its own
idempotency check, so the durability contract is the pipe's; but the fsync (SQLite's
``synchronous=FULL``, the floor of any per-message commit) is paid once per group, not
once per message.  With PostgreSQL the daemon writes directly (it has psycopg loaded
already; ``pg_mode = "spool"`` only concerns the pipe), one ``record`` per message in a
small thread pool, with one writer per worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bounce_handler import intake
from bounce_handler.daemon.workers import TimeLimit, WorkerDied, WorkerPool
from bounce_handler.errors import StoreUnavailable

log = logging.getLogger("bounce_handler.daemon.lmtp")

# Replies per outcome (RFC 3463 enhanced codes).  pipe.EXIT is the same table for exits.
REPLY = {
    "recorded": "250 2.0.0",
    "duplicate": "250 2.0.0",
    "ignored": "250 2.0.0",
    "quarantined": "250 2.0.0",
    "tempfail": "451 4.3.0",
}
MAX_REPLY_TEXT = 200
WORKERS = 4
# Messages up to this size are parsed in the daemon's own worker threads, larger ones in a
# worker process under [daemon] lmtp_time_limit (daemon/workers.py).  The parse is linear
# in the message (every pattern runs on bounded input: issue 14 item 1), so 64 KiB parse
# in milliseconds, and most bounces are smaller (Postfix returns at most
# bounce_size_limit = 50000 bytes of the original); handing those to a process cost ~30%
# more CPU a message in bench/storm.py's LMTP mode (IPC, and two processes contending for
# two cores) for no protection they need.  Past this size a super-linear pattern or a bug
# would cost seconds: that is where a parse must be stoppable.
INLINE_PARSE_MAX = 64 * 1024


def _reply_text(text: str) -> str:
    """One printable ASCII line (a CR/LF in a reason would forge further replies)."""
    text = "".join(c if " " <= c < "\x7f" else "?" for c in text)
    return text[:MAX_REPLY_TEXT]


def default_writer_factory(settings):
    """Return the writer a resident process uses: SQLite, or PostgreSQL *directly*."""
    url = settings.database.url
    if url.startswith("postgresql"):
        from bounce_handler.store.pg import writer_for_settings

        # One per worker thread (LmtpHandler._writer), so the connection is not shared.
        return writer_for_settings(settings, keep_connection=True)
    return intake.writer_for(settings)


class SqliteGroupCommitter:
    """One writer thread; every batch waiting when a transaction starts joins it.

    The statements are store/lean.py's (the column lists tested against the models); the
    per-message steps are SqliteWriter.record's, in one BEGIN IMMEDIATE ... COMMIT per
    group instead of per message.  A failure of the group (locked past busy_timeout,
    disk full, read-only) fails every batch in it with StoreUnavailable: each recipient
    gets 451 and Postfix retries it; nothing of the group was committed.

    One poison message never fails its neighbours (issue 14): the group is first written
    without a savepoint per message (they cost ~0.07 ms of CPU a bounce: SQLite copies each
    page a savepoint touches into its statement journal); when one message fails, that
    transaction is rolled back and the group written again with a savepoint per message,
    where the failing one is set aside (rows SQLite refuses) or gets 451 (a judge bug)
    and the others commit.  Nothing of the first pass survives its rollback, and the
    second decides every message afresh (its duplicate check included), so the result is
    the one savepoints alone would have given; a group pays for two passes only when one
    of its messages fails (tests/faults/test_lmtp_budget.py).
    """

    MAX_GROUP = 256

    def __init__(self, path: str, busy_timeout: float, judge=None) -> None:
        import queue

        self.path = path
        self.busy_timeout = busy_timeout
        self.judge = judge
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self._conn = None
        self.groups = 0
        self.retried = 0  # groups written again with a savepoint per message
        self._thread = threading.Thread(target=self._run, name="lmtp-commit", daemon=True)
        self._thread.start()

    def submit(self, batch, loop=None):
        """Queue a batch; return a future of (message id, created).

        A concurrent.futures.Future; or, given the running asyncio `loop` (call from its
        thread), a future of that loop, which the writer settles with the rest of its
        group in one ``call_soon_threadsafe``: one wake-up of the loop per group rather
        than one per message (``asyncio.wrap_future`` makes one each).
        """
        if loop is None:
            from concurrent.futures import Future

            fut = Future()
        else:
            fut = loop.create_future()
        self.queue.put((batch, fut, loop))
        return fut

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        self.queue.put(None)
        self._thread.join(10)

    def _connect(self):
        from bounce_handler.store.lean import SqliteWriter

        if self._conn is None:
            # SqliteWriter's checks and messages (missing file, mode=rw, explain()).
            self._conn = SqliteWriter(self.path, self.busy_timeout)._connect()
        return self._conn

    def _run(self) -> None:
        import queue

        while True:
            item = self.queue.get()
            if item is None:
                break
            group = [item]
            stop = False
            while len(group) < self.MAX_GROUP:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
            self._commit(group)
            if stop:
                break
        if self._conn is not None:
            self._conn.close()

    def _commit(self, group) -> None:
        import sqlite3

        from bounce_handler.store import lean

        conn = None
        try:
            conn = self._connect()
            results = self._write_group(conn, group, lean, isolate=False)
            if results is None:
                # A message of the group failed (rows SQLite refused, a judge bug): the
                # transaction was rolled back; the group again, each message in its own
                # savepoint, so that one is set aside or deferred and the rest commit.
                self.retried += 1
                results = self._write_group(conn, group, lean, isolate=True)
            self.groups += 1
        except Exception as e:  # noqa: BLE001 - the whole group failed: each one 451
            if conn is not None and conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(e, sqlite3.Error):
                err = StoreUnavailable(lean._explain(e, self.path, self.busy_timeout))
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
            else:
                err = e
            results = [(None, err)] * len(group)
        _settle(group, results)

    def _write_group(self, conn, group, lean, isolate: bool):
        """One transaction for the group; its (result, error) per batch, committed.

        ``isolate=False``: no savepoint per message (lean.write); the first message that
        fails rolls the whole transaction back and None is returned, for the caller to
        write the group again with ``isolate=True``.  An outage (``_outage``) raises
        either way: the whole group fails.
        """
        import sqlite3

        conn.execute("BEGIN IMMEDIATE")
        lean._check_schema(conn)
        seen: dict[str, int] = {}
        results = []
        for batch, _, _ in group:
            try:
                results.append((self._one(conn, batch, seen, lean, isolate), None))
            except Exception as e:  # noqa: BLE001 - sorted out below
                if _outage(e, sqlite3):
                    raise
                if not isolate:
                    conn.execute("ROLLBACK")
                    return None
                # This message alone (a bug in a judge rule for its rows, or rows
                # SQLite refused even set aside): its savepoint was rolled back, the
                # rest of the group goes on.  Its recipients get 451, Postfix retries.
                results.append((None, e))
        conn.execute("COMMIT")
        return results

    def _one(self, conn, batch, seen, lean, isolate):
        digest = batch.message["digest"]
        if digest in seen:  # the same message twice in one group (two connections)
            return seen[digest], False
        row = conn.execute("SELECT id FROM messages WHERE digest = ?", (digest,)).fetchone()
        if row is not None:
            return row[0], False
        # SqliteWriter's per-message steps (store/lean.py write: cleaning, savepoint, set
        # aside when SQLite refuses the rows, judge), inside the group's transaction.
        message_id = lean.write(conn, batch, self.judge, isolate)
        seen[digest] = message_id
        return message_id, True


def _settle(group, results) -> None:
    """Give each batch of `group` its (result, error): one call per asyncio loop waiting."""
    now: list = []
    by_loop: dict = {}
    for (_, fut, loop), (res, err) in zip(group, results, strict=True):
        (now if loop is None else by_loop.setdefault(loop, [])).append((fut, res, err))
    _settle_now(now)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_now, items)
        except RuntimeError:  # the loop is closed: nobody waits for these any more
            pass


def _settle_now(items) -> None:
    """Settle (future, result, error) items; in an asyncio loop's thread for its futures."""
    for fut, res, err in items:
        if fut.done():  # cancelled: the connection (or the caller) went away
            continue
        if err is None:
            fut.set_result(res)
        else:
            fut.set_exception(err)


def _outage(e: BaseException, sqlite3) -> bool:
    """Whether `e` means SQLite cannot write at all now, not one message's trouble.

    Locked, full, read-only, an I/O error, a damaged file.
    """
    return isinstance(e, sqlite3.OperationalError) or type(e) is sqlite3.DatabaseError


class LmtpHandler:
    """aiosmtpd handler: accepts every recipient, answers DATA once per recipient."""

    def __init__(self, settings, writer_factory=None, workers: int = WORKERS, clock=time.time):
        self.settings = settings
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="lmtp")
        self.clock = clock
        self.relay = settings.intake.relay or os.uname().nodename
        self._local = threading.local()
        self.counts: dict[str, int] = {}
        # Parsed once: the rules are part of the (frozen) settings.  Invalid rules make
        # the daemon refuse to start, as `bounces config check` would.
        self.judge = intake.judge_for(settings)
        self.committer = None
        url = settings.database.url
        if writer_factory is None and url.startswith("sqlite"):
            from bounce_handler.store.lean import sqlite_path

            self.committer = SqliteGroupCommitter(
                sqlite_path(url), settings.database.busy_timeout, self.judge
            )
        self.writer_factory = writer_factory or default_writer_factory
        self.workers = WorkerPool(settings, workers, settings.daemon.lmtp_time_limit)

    def _writer(self):
        w = getattr(self._local, "writer", None)
        if w is None:
            w = self._local.writer = self.writer_factory(self.settings)
        return w

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Accept the recipient (see below)."""
        # Accept every recipient: a bare or foreign local part is still a message Postfix
        # routed here, and refusing it (5xx) would bounce a bounce.  It is recorded without
        # a VERP extension, as the pipe does for a bare bounces@ address.
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _build(self, raw: bytes, size: int, truncated: bool, mail_from, rcpt: str):
        """intake.build for one recipient's copy (the pipe's parse, VERP and rows).

        Up to INLINE_PARSE_MAX bytes in this thread; a larger message in a worker process,
        with the time limit: past it, the message is kept unparsed.
        """
        from bounce_handler import verp

        try:
            extension = verp.split_address(rcpt, self.settings)
        except Exception:  # noqa: BLE001 - not a bounce address: no extension
            extension = None
        env = intake.Envelope(
            extension=extension,
            sender=mail_from or "",
            recipient=rcpt.strip("<>") or None,
        )
        now = self.clock()
        kw = dict(source="lmtp", size=size, truncated=truncated, relay=self.relay)
        if len(raw) <= INLINE_PARSE_MAX:
            return intake.build(raw, env, self.settings, now, **kw)
        try:
            return self.workers.build(raw, env, now, **kw)
        except TimeLimit as e:
            log.warning("lmtp: %s: quarantined: %s", _reply_text(rcpt), e)
            return intake.unparsed(raw, env, self.settings, now, "time-limit", str(e), **kw)

    def _record(self, batch):
        """Per-message write (PostgreSQL, or an injected writer). Runs in a worker thread."""
        try:
            return self._writer().record(batch, judge=self.judge if batch.events else None)
        except Exception:
            self._local.writer = None  # reconnect next time (PostgreSQL restarted)
            raise

    async def _one(self, loop, raw, size, truncated, mail_from, rcpt) -> str:
        """One recipient: build, record, and the reply line -- never an exception."""
        try:
            batch, outcome = await loop.run_in_executor(
                self.executor, self._build, raw, size, truncated, mail_from, rcpt
            )
            if self.committer is not None:
                message_id, created = await self.committer.submit(batch, loop)
            else:
                message_id, created = await loop.run_in_executor(
                    self.executor, self._record, batch
                )
            # The same rules as intake.process: set aside by the writer, duplicate.
            if batch.aside:
                outcome.name, outcome.detail = "quarantined", batch.aside
            if not created:
                outcome.name = "duplicate"
                outcome.detail = f"already recorded as message {message_id}"
            name, detail = outcome.name, outcome.detail
        except (StoreUnavailable, WorkerDied) as e:
            name, detail = "tempfail", str(e)
        except Exception as e:  # noqa: BLE001 - defer, never 5xx (a bounce would be lost)
            from bounce_handler.errors import BounceHandlerError

            name = "tempfail"
            if isinstance(e, BounceHandlerError) or type(e).__name__ == "ConfigError":
                detail = str(e)  # a key or config file: the message names it and why
            else:
                log.exception("lmtp: unexpected error for %s", _reply_text(rcpt))
                detail = f"internal error: {type(e).__name__}"
        self.counts[name] = self.counts.get(name, 0) + 1
        return f"{REPLY[name]} <{_reply_text(rcpt)}> {name}: {_reply_text(detail)}"

    async def handle_DATA(self, server, session, envelope):
        """Record the message once per recipient; one reply line each."""
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        size = len(raw)
        cap = self.settings.intake.max_message_bytes
        # read_data refused DATA over the cap (552); this only guards a change there.
        truncated = size > cap
        if truncated:
            raw = raw[:cap]
        loop = asyncio.get_running_loop()
        replies = await asyncio.gather(
            *(
                self._one(loop, raw, size, truncated, envelope.mail_from, r)
                for r in envelope.rcpt_tos
            )
        )
        # aiosmtpd writes the returned text followed by CRLF: one reply line per recipient,
        # in RCPT order (RFC 2033 section 4.2).
        return "\r\n".join(replies)

    def close(self) -> None:
        """Stop the worker threads, processes and the committer (after the server stopped)."""
        self.executor.shutdown(wait=True)
        self.workers.close()
        if self.committer is not None:
            self.committer.close()
            self.committer = None


# aiosmtpd 1.4's reply to MAIL FROM ... SIZE= above data_size_limit;
# tests/faults/test_lmtp_budget.py fails if a new version words it otherwise.
_SIZE_REFUSED = "552 Error: message size exceeds fixed maximum message size"

# How much of the stream read_data asks for at a time (and the reader's buffer limit).
READ_LIMIT = 1024 * 1024
_END = b"\r\n.\r\n"


async def read_data(reader: asyncio.StreamReader, cap: int) -> bytes | None:
    """The message after DATA's 354 (RFC 5321 4.5.2 undone), or None when over `cap` bytes.

    Reads up to each ".<CRLF>" the stream holds -- a C-speed search per chunk -- rather
    than line by line (aiosmtpd 1.4's loop costs ~1 s a MiB here), and counts the bytes:
    past `cap` it keeps reading to the end of the message but keeps only the last two
    bytes, so a message of any size costs `cap` of memory at most.  The end is a line that
    is just "."; the CRLF before it ends the last line and is part of the message (the
    stream starts right after DATA's own CRLF, so a first line of "." is the end too).
    Every other line starting with "." loses that first dot.  Bytes after the end stay in
    the reader for the next command (pipelining).  Raises asyncio.IncompleteReadError when
    the connection closes first.
    """
    parts: list[bytes] = []
    size = 0
    tail = b"\r\n"  # what precedes the current chunk: the CRLF ending the DATA line
    while True:
        try:
            chunk = await reader.readuntil(b".\r\n")
        except asyncio.LimitOverrunError as e:
            chunk = await reader.readexactly(e.consumed)
            ended = False
        else:
            ended = (tail + chunk[:-3])[-2:] == b"\r\n"  # the "." starts a line
        if ended:
            chunk = chunk[:-3]  # the ".<CRLF>" of the end
        size += len(chunk)
        if size <= cap:
            parts.append(chunk)
        elif parts:
            parts.clear()  # over the cap: nothing is kept from here on
        tail = (tail + chunk)[-2:]
        if ended:
            break
    if size > cap:
        return None
    data = b"".join(parts)
    # Transparency (RFC 5321 4.5.2): a line's first "." was added by the client.
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n")
    return data[1:] if data.startswith(b".") else data


def _too_big(rcpts, cap: int) -> str:
    """One 552 5.3.4 per accepted recipient (RFC 2033 section 4.2), not one for all."""
    return "\r\n".join(
        f"552 5.3.4 <{_reply_text(r)}> message exceeds the limit of {cap} bytes "
        "([intake] max_message_bytes)"
        for r in rcpts
    )


class LmtpService:
    """The LMTP listener as a ``bounces daemon`` service: ``start()`` / ``stop()``."""

    name = "lmtp"

    def __init__(self, settings, listen: str | None = None, writer_factory=None, workers=WORKERS):
        self.settings = settings
        from bounce_handler.daemon.server import parse_listen

        self.listen = listen or settings.daemon.lmtp_listen
        self.kind, self.where = parse_listen(self.listen)
        self.handler = LmtpHandler(settings, writer_factory, workers)
        self.controller = None

    @property
    def address(self) -> str:
        """The bound address (the real port after start when the spec said port 0)."""
        if self.kind == "inet" and self.controller is not None:
            try:
                host, port = self.controller.server.sockets[0].getsockname()[:2]
                return f"inet:{host}:{port}"
            except (AttributeError, IndexError, OSError):
                pass
        return self.listen

    def _make_controller(self):
        from aiosmtpd.controller import Controller, UnixSocketController
        from aiosmtpd.lmtp import LMTP
        from aiosmtpd.smtp import MISSING, syntax

        cap = self.settings.intake.max_message_bytes

        class _LMTP(LMTP):
            # The reader's buffer limit: command lines (aiosmtpd bounds those itself) and
            # the chunks read_data takes at a time; DATA has no line limit of its own.
            line_length_limit = READ_LIMIT

            async def push(self, status):
                # MAIL FROM ... SIZE= over the cap: aiosmtpd's text, our enhanced code.
                if status == _SIZE_REFUSED:
                    status = f"552 5.3.4 message size exceeds the limit of {cap} bytes"
                await super().push(status)

            @syntax("DATA")
            async def smtp_DATA(self, arg: str) -> None:
                """DATA, read by ``read_data``: in chunks, capped, one reply per recipient."""
                if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
                    return
                if not self.envelope.rcpt_tos:
                    await self.push("503 5.5.1 Error: need RCPT command")
                    return
                if arg:
                    await self.push("501 5.5.4 Syntax: DATA")
                    return
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                try:
                    content = await read_data(self._reader, cap)
                except asyncio.IncompleteReadError:
                    return  # the client went away mid-message: nothing to answer
                if content is None:
                    replies = _too_big(self.envelope.rcpt_tos, cap)
                else:
                    self.envelope.content = self.envelope.original_content = content
                    status = await self._call_handler_hook("DATA")
                    replies = "250 OK" if status is MISSING else status
                self._set_post_data_state()
                await self.push(replies)

        def factory(ctrl):
            return _LMTP(ctrl.handler, **ctrl.SMTP_kwargs)

        kwargs = dict(data_size_limit=cap, enable_SMTPUTF8=True, ident="bounce-handler LMTP")
        if self.kind == "unix":
            cls = type("LmtpUnixController", (UnixSocketController,), {"factory": factory})
            return cls(self.handler, unix_socket=self.where, **kwargs)
        host, port = self.where
        cls = type("LmtpInetController", (Controller,), {"factory": factory})
        return cls(self.handler, hostname=host, port=port, **kwargs)

    def start(self) -> None:
        """Bind and serve in a background thread."""
        if self.kind == "unix":
            path = self.where
            if os.path.exists(path):
                os.unlink(path)  # a stale socket from a previous run
        self.controller = self._make_controller()
        self.controller.start()
        if self.kind == "unix":
            # Postfix's lmtp client (user postfix) must connect; nobody else needs to.
            os.chmod(self.where, 0o660)
        log.info("lmtp listening on %s", self.listen)

    def stop(self) -> None:
        """Stop accepting, finish the messages in hand."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        self.handler.close()
        if self.kind == "unix":
            try:
                os.unlink(self.where)
            except OSError:
                pass
