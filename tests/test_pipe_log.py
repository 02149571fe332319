"""The pipe's structured log line never vanishes: syslog when a daemon listens, else stderr.

Runs the real entrypoint.  The condition that lost the line (issue 16): no syslog daemon
on /dev/log -- a container, a Postfix logging with ``maillog_file`` -- where libc's
syslog(3), which the pipe used, drops the line and reports nothing.
"""

from __future__ import annotations

import socket
import subprocess
import time

from tests.conftest import SAMPLES, script
from tests.support.syslog import Listener, without_dev_log

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
LINE = "outcome=recorded exit=0 token=alice=example.net"


def syslog_config(store, extra: str = "") -> None:
    store.config.write_text(
        f'[database]\nurl = "{store.url}"\nbusy_timeout = 2.0\n'
        f'[log]\ntarget = "syslog"\n{extra}'
    )


def run(store, argv=None, input=DSN):
    return subprocess.run(
        argv or [script("bounce-handler"), "--config", str(store.config), "alice=example.net"],
        input=input,
        capture_output=True,
        timeout=60,
    )


def wait_received(listener: Listener, timeout: float = 10.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while not listener.received and time.monotonic() < deadline:
        time.sleep(0.05)
    return listener.received


def test_no_dev_log_the_line_goes_to_stderr(store):
    """The default config (target syslog on /dev/log) where nothing listens on /dev/log.

    Fails on the code before issue 16: syslog(3) "succeeded" and the line was gone.
    """
    syslog_config(store)
    proc = run(
        store,
        without_dev_log(
            [script("bounce-handler"), "--config", str(store.config), "alice=example.net"]
        ),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.decode().startswith("recorded: ")
    err = proc.stderr.decode()
    assert LINE in err and "reason=userunknown" in err, err
    assert len(err.splitlines()) == 1


def test_missing_socket_path_falls_back_to_stderr(store, tmp_path):
    syslog_config(store, f'syslog_socket = "{tmp_path / "no-such.sock"}"\n')
    proc = run(store)
    assert proc.returncode == 0
    assert LINE in proc.stderr.decode()


def test_socket_nobody_listens_on_falls_back_to_stderr(store, tmp_path):
    """A socket file left behind by a syslog daemon that is gone: connect() is refused."""
    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.close()
    assert path.exists()
    syslog_config(store, f'syslog_socket = "{path}"\n')
    proc = run(store)
    assert proc.returncode == 0
    assert LINE in proc.stderr.decode()


def test_a_listening_datagram_socket_gets_the_line_as_syslog_would(store, tmp_path):
    path = tmp_path / "log.sock"
    with Listener(str(path)) as listener:
        syslog_config(store, f'syslog_socket = "{path}"\nsyslog_ident = "bh-test"\n')
        proc = run(store)
        assert proc.returncode == 0
        [frame] = wait_received(listener)
    text = frame.decode()
    # <PRI> = facility mail (2) * 8 + info (6); then timestamp, TAG[PID]: the line.
    assert text.startswith("<22>"), text
    assert " bh-test[" in text and f"]: {LINE}" in text
    assert "\n" not in text
    assert LINE not in proc.stderr.decode()  # delivered once, not twice


def test_tempfail_is_logged_at_warning(store, tmp_path):
    path = tmp_path / "log.sock"
    store.db.unlink()  # the pipe defers: database missing
    with Listener(str(path)) as listener:
        syslog_config(store, f'syslog_socket = "{path}"\n')
        proc = run(store)
        assert proc.returncode == 75
        [frame] = wait_received(listener)
    assert frame.startswith(b"<20>")  # mail.warning
    assert b"outcome=tempfail exit=75" in frame


def test_a_stream_socket_gets_a_nul_terminated_frame(store, tmp_path):
    """syslog-ng can listen on a stream /dev/log; glibc then sends NUL-terminated frames."""
    path = tmp_path / "log.sock"
    with Listener(str(path), socket.SOCK_STREAM) as listener:
        syslog_config(store, f'syslog_socket = "{path}"\n')
        proc = run(store)
        assert proc.returncode == 0
        [frame] = wait_received(listener)
    assert frame.endswith(b"\0") and frame.count(b"\0") == 1
    assert LINE.encode() in frame
    assert LINE not in proc.stderr.decode()


def test_file_target_appends_one_stamped_line_per_process(store, tmp_path):
    path = tmp_path / "pipe.log"
    store.config.write_text(
        f'[database]\nurl = "{store.url}"\n[log]\ntarget = "file"\nfile = "{path}"\n'
    )
    first = run(store)
    second = run(store, input=b"X-Again: 1\n" + DSN)
    assert first.returncode == second.returncode == 0
    assert LINE not in first.stderr.decode() + second.stderr.decode()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    # 2026-12-01T15:40:18Z bounce-handler[PID]: outcome=...
    stamp, tag, rest = lines[0].split(" ", 2)
    assert len(stamp) == 20 and stamp.endswith("Z") and tag.startswith("bounce-handler[")
    assert rest.startswith(LINE) and "elapsed_ms=" in rest
    assert "outcome=duplicate" in lines[1] or "outcome=recorded" in lines[1]
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_file_target_unwritable_falls_back_to_stderr(store, tmp_path):
    path = tmp_path / "no-such-dir" / "pipe.log"
    store.config.write_text(
        f'[database]\nurl = "{store.url}"\n[log]\ntarget = "file"\nfile = "{path}"\n'
    )
    proc = run(store)
    assert proc.returncode == 0
    assert LINE in proc.stderr.decode()
    assert not path.exists()
