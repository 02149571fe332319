"""A private Postfix instance on loopback for end-to-end tests.

Debian's ``postfix`` package installs the binaries; this module writes a config directory of
its own and runs ``postfix -c DIR start`` (no systemd, no postmulti), so several instances
(several "relays") can run side by side and none touches /etc/postfix.

What the generated configuration guarantees:

- nothing leaves the machine: ``default_transport`` and ``relay_transport`` are
  ``error:``, smtpd listens on ``127.0.0.1:PORT`` only;
- the bounce address ``bounces@<domain>`` (and every ``bounces+TOKEN@<domain>``, since
  ``recipient_delimiter = +`` strips the extension for the table lookups) goes to a pipe
  service named ``verpbounce`` -- *not* ``bounce``, which would silently replace Postfix's
  own bounce daemon in master.cf;
- ``verpbounce_destination_recipient_limit = 1``: pipe(8) expands ``${extension}`` only
  when a delivery has exactly one recipient;
- the domain ``defer.test`` is routed to ``retry:`` so a test can make Postfix defer and
  send delay notices;
- retries are fast (``queue_run_delay``/backoff of 1-2 s) so "deferred, then delivered"
  takes seconds, not the production 5 minutes.

The pipe runs as ``nobody``: the handler's argv, its config file and its store must be
reachable by that user.  ``pipe_bin_dir`` (the ``pipe_bin`` fixture in tests/conftest.py)
uses the dev venv when ``nobody`` can run it and otherwise builds a non-editable
deployment with deploy/install.sh in a 0755 directory; ``Relay`` puts config and store in
a directory owned by ``nobody``.

Start-up cost, measured here: ~0.3 s a fresh instance.  Two things made it ~2.7 s before:
``postfix status`` on a queue directory that does not exist yet (2.1 s; the pid file is
read instead) and Postfix re-reading a main.cf younger than ~2 s every 300 ms until it is
older (the files are backdated).
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import socket
import subprocess
import time

BOUNCE_DOMAIN = "relay.test"
BOUNCE_LOCALPART = "bounces"
DEFER_DOMAIN = "defer.test"
TRANSPORT = "verpbounce"
PIPE_USER = "nobody"

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
SENDMAIL = "/usr/sbin/sendmail"


def unavailable_reason() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    for binary in (POSTFIX, POSTCONF, POSTQUEUE):
        if not os.path.exists(binary):
            return (
                f"{binary} not found; install Debian's postfix package (debconf "
                "'No configuration', DEBIAN_FRONTEND=noninteractive apt-get install postfix)"
            )
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix start, pipe user=nobody)"
    if not os.path.exists("/etc/postfix/master.cf"):
        return "/etc/postfix/master.cf (the stock service table) is missing"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate()` until it returns a truthy value; return it, or raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class PostfixError(RuntimeError):
    """The private instance could not be configured or started."""


class PostfixInstance:
    """One private Postfix under `base_dir` with smtpd on 127.0.0.1:`port`.

    `handler_argv` is the pipe command *before* the Postfix macros, e.g.
    ``["/opt/bh/venv/bin/bounce-handler", "--config", "/opt/bh/config.toml"]``; the
    instance appends `handler_macros` (default ``-- ${extension}``: ``--`` ends the
    options, since an extension may start with "-").
    """

    def __init__(
        self,
        base_dir: str,
        port: int | None = None,
        *,
        handler_argv: list[str] | None = None,
        handler_macros: list[str] | None = None,
        name: str = "relay",
        pipe_flags: str = "DORq",
        extra_main: dict[str, str] | None = None,
        pipe_entry: str | None = None,
    ) -> None:
        self.base_dir = os.path.abspath(base_dir)
        self.port = port or free_port()
        self.name = name
        self.config_dir = os.path.join(self.base_dir, "etc")
        self.queue_directory = os.path.join(self.base_dir, "queue")
        self.data_directory = os.path.join(self.base_dir, "data")
        self.maillog_file = os.path.join(self.base_dir, "maillog")
        self.handler_argv = list(handler_argv or ["/bin/true"])
        self.handler_macros = list(handler_macros or ["--", "${extension}"])
        self.pipe_flags = pipe_flags
        self.extra_main = dict(extra_main or {})
        # A complete master.cf entry to use verbatim instead of pipe_service_line().
        self.pipe_entry = pipe_entry
        self.start_seconds: float | None = None

    # -- configuration ----------------------------------------------------------------

    @property
    def bounce_address(self) -> str:
        """The bare bounce address (no extension)."""
        return f"{BOUNCE_LOCALPART}@{BOUNCE_DOMAIN}"

    def verp_address(self, token: str) -> str:
        """bounces+TOKEN@relay.test."""
        return f"{BOUNCE_LOCALPART}+{token}@{BOUNCE_DOMAIN}"

    def main_cf(self) -> dict[str, str]:
        """The main.cf parameters this instance runs with."""
        etc = self.config_dir
        params = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_directory,
            "data_directory": self.data_directory,
            # Postfix >= 3.4 logs to a file through the postlog service, no syslog needed.
            "maillog_file": self.maillog_file,
            "maillog_file_prefixes": self.base_dir,
            "syslog_name": f"postfix-{self.name}",
            "myhostname": f"{self.name}.{BOUNCE_DOMAIN}",
            "mydomain": BOUNCE_DOMAIN,
            "myorigin": BOUNCE_DOMAIN,
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            # Nothing ever leaves: mail for anywhere but the bounce address fails at once.
            "default_transport": "error:5.1.2 test relay delivers nowhere",
            "relay_transport": "error:5.1.2 test relay delivers nowhere",
            # The bounce domain is a relay domain whose only valid recipient is the bounce
            # address; texthash: needs no postmap.
            "relay_domains": f"{BOUNCE_DOMAIN}, {DEFER_DOMAIN}",
            "relay_recipient_maps": f"texthash:{etc}/relay_recipients",
            "transport_maps": f"texthash:{etc}/transport",
            "recipient_delimiter": "+",
            f"{TRANSPORT}_destination_recipient_limit": "1",
            f"{TRANSPORT}_time_limit": "120s",
            # Fast retries: "deferred, then delivered" in seconds.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            # Postmaster copies of Postfix's own bounce and delay notices go to the handler.
            "notify_classes": "bounce, delay, resource, software",
            "bounce_notice_recipient": self.bounce_address,
            "delay_notice_recipient": self.bounce_address,
            "error_notice_recipient": "postmaster",
            "2bounce_notice_recipient": "postmaster",
            "delay_warning_time": "0h",
            # The test machine's load average must not make smtpd refuse us.
            "in_flow_delay": "0s",
            "smtputf8_enable": "no",
        }
        params.update(self.extra_main)
        return params

    def pipe_service_line(self) -> str:
        """The master.cf entry for the handler."""
        argv = " ".join([*self.handler_argv, *self.handler_macros])
        return (
            f"{TRANSPORT} unix - n n - 10 pipe\n"
            # The production entry (deploy/postfix/master.cf): D, O and R add Delivered-To,
            # X-Original-To and Return-Path; null_sender= makes that Return-Path <> rather
            # than <MAILER-DAEMON> for a bounce.
            f"  flags={self.pipe_flags} null_sender= user={PIPE_USER} argv={argv}\n"
        )

    def write_config(self) -> None:
        """(Re)write main.cf, master.cf and the lookup tables."""
        os.makedirs(self.config_dir, exist_ok=True)
        # postfix-script cd's into the queue directory before creating its subdirectories.
        os.makedirs(self.queue_directory, exist_ok=True)
        # The pipe user (nobody) and Postfix's own users must traverse to the queue.
        os.chmod(self.base_dir, 0o755)
        with open(os.path.join(self.config_dir, "main.cf"), "w") as fp:
            for key, value in self.main_cf().items():
                fp.write(f"{key} = {value}\n")
        with open(os.path.join(self.config_dir, "transport"), "w") as fp:
            fp.write(f"{self.bounce_address}\t{TRANSPORT}:\n")
            # retry(8) defers with this text: the delay-notice and "still queued" tests.
            fp.write(f"{DEFER_DOMAIN}\tretry:4.4.1 deferred by the test relay\n")
        with open(os.path.join(self.config_dir, "relay_recipients"), "w") as fp:
            fp.write(f"{self.bounce_address}\tOK\n@{DEFER_DOMAIN}\tOK\n")
        self._write_master_cf()
        # Postfix re-reads a main.cf or table modified in the last ~2 s, sleeping 300 ms a
        # round until it is older (dict_load_file's guard against half-written files):
        # 2 s on every start and reload.  These files are complete, so backdate them.
        past = time.time() - 60
        for name in ("main.cf", "master.cf", "transport", "relay_recipients"):
            os.utime(os.path.join(self.config_dir, name), (past, past))

    def _write_master_cf(self) -> None:
        with open("/etc/postfix/master.cf") as fp:
            stock = fp.read().splitlines()
        out = []
        for line in stock:
            fields = line.split()
            # The stock "smtp inet" listener becomes smtpd on our loopback port only.
            if fields[:2] == ["smtp", "inet"]:
                out.append(f"127.0.0.1:{self.port} inet n - n - - smtpd")
                continue
            out.append(line)
        text = "\n".join(out) + "\n"
        if "\npostlog " not in text:
            # maillog_file needs the postlog service (Postfix >= 3.4).
            text += "postlog unix-dgram n - n - 1 postlogd\n"
        text += self.pipe_entry or self.pipe_service_line()
        with open(os.path.join(self.config_dir, "master.cf"), "w") as fp:
            fp.write(text)
        # Debian's stock table chroots most services into the queue directory, which would
        # need copies of /etc/services, resolv.conf ... inside each private queue.
        self.postconf("-F", "*/*/chroot = n")

    # -- commands ---------------------------------------------------------------------

    def _run(self, argv: list[str], check: bool = True, timeout: float = 60):
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise PostfixError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}\n"
                f"--- maillog tail ---\n{self.log_tail()}"
            )
        return proc

    def postconf(self, *args: str, check: bool = True) -> str:
        """Run ``postconf -c CONFIG_DIR ARGS`` and return its output."""
        return self._run([POSTCONF, "-c", self.config_dir, *args], check=check).stdout

    def start(self) -> None:
        """Write the configuration and start the instance (waits until smtpd answers)."""
        self.write_config()
        t0 = time.monotonic()
        if self.is_running():
            self.reload()
        else:
            self._run([POSTFIX, "-c", self.config_dir, "start"])
        wait_for(self._smtp_ready, timeout=30, what=f"smtpd on 127.0.0.1:{self.port}")
        self.start_seconds = time.monotonic() - t0

    def reload(self) -> None:
        """Re-read main.cf/master.cf (after changing them)."""
        self._run([POSTFIX, "-c", self.config_dir, "reload"])

    def stop(self, wait: bool = True) -> None:
        """Stop the instance (quietly if it is not running).

        The master takes ~1.3 s to exit after ``postfix stop``; `wait=False` (used on
        teardown, where the directory is removed next) does not wait for it.
        """
        if not self.is_running():
            return
        self._run([POSTFIX, "-c", self.config_dir, "stop" if wait else "abort"], check=False)
        if wait:
            try:
                wait_for(lambda: not self.is_running(), timeout=15, what="postfix stop")
            except TimeoutError:
                self._run([POSTFIX, "-c", self.config_dir, "abort"], check=False)

    def destroy(self) -> None:
        """Stop without waiting and remove every file."""
        try:
            self.stop(wait=False)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def is_running(self) -> bool:
        """True when this instance's master process is alive.

        Reads the master's pid file rather than running ``postfix status``, which takes
        ~2 s on a queue directory that does not exist yet.
        """
        try:
            with open(os.path.join(self.queue_directory, "pid", "master.pid")) as fp:
                pid = int(fp.read().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return True

    def _smtp_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(128).startswith(b"220")
        except OSError:
            return False

    # -- mail -------------------------------------------------------------------------

    def send(self, mail_from: str, rcpt: str | list[str], data: bytes | str) -> None:
        """Submit one message over SMTP (raises on any refusal)."""
        rcpts = [rcpt] if isinstance(rcpt, str) else list(rcpt)
        if isinstance(data, str):
            data = data.encode()
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            refused = smtp.sendmail(mail_from, rcpts, data)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def submit(self, mail_from: str, rcpt: str, data: bytes | str) -> None:
        """Submit one message locally (sendmail -> postdrop -> pickup), as a local program
        would: smtpd's RCPT checks (which refuse an error:/retry: destination outright) do
        not apply, so the queue manager itself bounces or defers it."""
        if isinstance(data, str):
            data = data.encode()
        proc = subprocess.run(
            [SENDMAIL, "-C", self.config_dir, "-i", "-f", mail_from, "--", rcpt],
            input=data,
            capture_output=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise PostfixError(f"sendmail exited {proc.returncode}: {proc.stderr.decode()[:500]}")

    def flush(self) -> None:
        """Ask the queue manager to retry every deferred message now."""
        self._run([POSTQUEUE, "-c", self.config_dir, "-f"], check=False)

    def queue_json(self) -> list[dict]:
        """``postqueue -j``: one dict per queued message (empty list when the queue is empty)."""
        out = self._run([POSTQUEUE, "-c", self.config_dir, "-j"]).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def log_text(self) -> str:
        """The whole maillog so far."""
        try:
            with open(self.maillog_file, errors="replace") as fp:
                return fp.read()
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The end of the maillog (for failure messages)."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for(
        self, predicate, timeout: float = 30.0, what: str = "condition", interval: float = 0.1
    ):
        """`wait_for` that appends the maillog tail to a timeout (the why is always there)."""
        try:
            return wait_for(predicate, timeout=timeout, what=what, interval=interval)
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- maillog tail ---\n{self.log_tail()}") from None

    def wait_retries(self, count: int, timeout: float = 60.0) -> None:
        """Wait until the maillog shows `count` deferred delivery attempts, flushing the queue.

        Flushing because of a qmgr race seen on Postfix 3.7: when a deferred-queue scan
        meets the message while its failed delivery is still being wrapped up, qmgr logs
        "skipped, still being delivered" and puts it back with a 60 s delay
        (qmgr_active_feed), whatever the backoff settings; `postqueue -f` ignores that.
        """

        def retried():
            if self.log_text().count("status=deferred") >= count:
                return True
            self.flush()
            return False

        self.wait_for(retried, timeout=timeout, what=f"{count} deferred attempts", interval=1.0)

    def wait_queue_empty(self, timeout: float = 30.0) -> None:
        """Wait until nothing is left in the queue (flushing meanwhile: see wait_retries)."""

        def empty():
            if not self.queue_json():
                return True
            self.flush()
            return False

        self.wait_for(empty, timeout=timeout, what="an empty queue", interval=0.5)


# -- a bounce-handler the pipe user can execute ---------------------------------------


def user_can_run(path: str, user: str = PIPE_USER) -> bool:
    """Whether `user` can execute `path --version` (what pipe(8) will try as that user)."""
    try:
        proc = subprocess.run(
            ["runuser", "-u", user, "--", path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def world_readable_deployment(repo: str, prefix: str, extras: str = "postgresql") -> str:
    """Install the project, non-editable, into `prefix`/venv with deploy/install.sh.

    For checkouts the pipe user cannot reach (a clone under /root, a 0700 pytest tmp dir):
    the venv gets its own copy of the package, so ``nobody`` needs no access to the
    checkout.  Returns the venv's bin directory.  ``--no-system`` leaves /etc and /var alone.
    """
    parent = os.path.dirname(prefix)
    os.makedirs(parent, exist_ok=True)
    os.chmod(parent, 0o755)
    proc = subprocess.run(
        [
            "bash",
            os.path.join(repo, "deploy", "install.sh"),
            "--prefix",
            prefix,
            "--source",
            repo,
            "--extras",
            extras,
            "--no-system",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise PostfixError(
            f"deploy/install.sh --prefix {prefix} failed ({proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return os.path.join(prefix, "venv", "bin")


def pipe_bin_dir(repo: str, dev_bin: str, scratch: str) -> tuple[str, str]:
    """A bin directory whose bounce-handler the pipe user can run: (dir, how).

    The development venv when ``nobody`` can already execute it (the usual case: a venv
    made from /usr/bin/python3 in a world-readable checkout); otherwise a fresh
    non-editable deployment under `scratch` (a 0755 directory), built once per session.
    """
    if user_can_run(os.path.join(dev_bin, "bounce-handler")):
        return dev_bin, "dev venv"
    bin_dir = world_readable_deployment(repo, os.path.join(scratch, "opt"))
    if not user_can_run(os.path.join(bin_dir, "bounce-handler")):
        raise PostfixError(f"{PIPE_USER} cannot run {bin_dir}/bounce-handler even after install")
    return bin_dir, "deployed copy"


def give_to_pipe_user(*paths: str) -> None:
    """chown paths to the pipe user (a store directory and its files must be writable)."""
    import pwd

    pw = pwd.getpwnam(PIPE_USER)
    for p in paths:
        os.chown(p, pw.pw_uid, pw.pw_gid)


class Relay:
    """A private Postfix wired to the real bounce-handler, with its config and store.

    Layout under `base` (0755, so ``nobody`` can traverse it)::

        postfix/     the PostfixInstance (config, queue, maillog)
        work/        owned by the pipe user: config.toml, the SQLite store (if any)

    `url` is the store: ``None`` for a SQLite file in work/ (a copy of `sqlite_template`,
    an already migrated database, when given), or a PostgreSQL URL.
    """

    def __init__(
        self,
        base: str,
        bin_dir: str,
        *,
        name: str = "relay",
        url: str | None = None,
        sqlite_template: str | None = None,
        config_extra: str = "",
        extra_main: dict[str, str] | None = None,
        pipe_args: list[str] | None = None,
        pg_mode: str = "direct",
        handler_macros: list[str] | None = None,
    ) -> None:
        self.base = base
        self.bin_dir = bin_dir
        self.work = os.path.join(base, "work")
        os.makedirs(self.work, exist_ok=True)
        os.chmod(base, 0o755)
        self.db_path = None
        if url is None:
            self.db_path = os.path.join(self.work, "bounces.db")
            if sqlite_template:
                shutil.copy(sqlite_template, self.db_path)
            url = f"sqlite:///{self.db_path}"
        self.url = url
        self.config = os.path.join(self.work, "config.toml")
        self.spool_dir = os.path.join(self.work, "spool")
        # The pipe's structured line: a file in work/ (Postfix keeps only the first 100
        # characters of a successful delivery's output, and there may be no syslog here).
        self.log_file = os.path.join(self.work, "pipe.log")
        pg = ""
        if url.startswith("postgresql"):
            pg = f'\npg_mode = "{pg_mode}"\nspool_dir = "{self.spool_dir}"'
        with open(self.config, "w") as fp:
            fp.write(
                f'[database]\nurl = "{url}"\nbusy_timeout = 5.0{pg}\n'
                f'[log]\ntarget = "file"\nfile = "{self.log_file}"\n'
                f'[intake]\nrelay = "{name}"\n'
                f'[verp]\ndomain = "{BOUNCE_DOMAIN}"\nkey_file = "{self.work}/verp.keys"\n'
                + config_extra
            )
        os.chmod(self.config, 0o644)
        owned = [self.work, self.config]
        if url.startswith("postgresql") and pg_mode == "spool":
            for sub in ("", "tmp", "new", "bad"):
                os.makedirs(os.path.join(self.spool_dir, sub), exist_ok=True)
                owned.append(os.path.join(self.spool_dir, sub))
        if self.db_path and os.path.exists(self.db_path):
            owned.append(self.db_path)
        give_to_pipe_user(*owned)
        self.postfix = PostfixInstance(
            os.path.join(base, "postfix"),
            name=name,
            handler_argv=[
                os.path.join(bin_dir, "bounce-handler"),
                "--config",
                self.config,
                *(pipe_args or []),
            ],
            handler_macros=handler_macros,
            extra_main=extra_main,
        )

    def start(self) -> Relay:
        """Start Postfix."""
        self.postfix.start()
        return self

    def destroy(self) -> None:
        """Stop Postfix and remove everything."""
        try:
            self.postfix.stop(wait=False)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
