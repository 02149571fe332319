"""The socketmap daemon over real sockets, speaking real netstrings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler import verp
from bounce_handler.daemon import server
from bounce_handler.daemon.socketmap import SocketmapService, netstring
from tests.conftest import script
from tests.verp.conftest import KEY_A, NOW


def cfg_for(key_file, **daemon):
    d = {"sender_domains": "corp.example, .sub.example"}
    d.update(daemon)
    return settings_mod.from_dict(
        {"verp": {"key_file": str(key_file), "domain": "relay.example"}, "daemon": d}
    )


class Client:
    """A socketmap client as Postfix's dict_socketmap is: one connection, many requests."""

    def __init__(self, address: str):
        kind, where = server.parse_listen(address)
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(where)
        self.buf = b""

    def raw(self, data: bytes) -> bytes:
        self.sock.sendall(data)
        return self.read()

    def read(self) -> bytes:
        while b":" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b":")
        n = int(head)
        while len(rest) < n + 1:
            self._fill()
            head, _, rest = self.buf.partition(b":")
        assert rest[n : n + 1] == b",", rest
        self.buf = rest[n + 1 :]
        return rest[:n]

    def _fill(self):
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def ask(self, name: str, key: str) -> str:
        return self.raw(netstring(f"{name} {key}".encode())).decode()

    def close(self):
        self.sock.close()


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "verp.keys"
    path.write_text(KEY_A + "\n")
    return path


@pytest.fixture
def service(key_file):
    svc = SocketmapService(cfg_for(key_file), "inet:127.0.0.1:0", clock=lambda: NOW)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def client(service):
    c = Client(service.address)
    yield c
    c.close()


def test_sender_rewritten_to_signed_per_sender_address(service, client, key_file):
    reply = client.ask("sender", "news@corp.example")
    assert reply.startswith("OK bounces+.a") and reply.endswith("@relay.example")
    address = reply[3:]
    # The per-message nonce: news=corp.example==.NNNN (verp.py "Per-message nonce").
    assert address.split("@")[0][:-4].endswith("news=corp.example==.")
    cfg = cfg_for(key_file)
    result = verp.decode(verp.split_address(address, cfg), cfg, NOW)
    assert (result.sender, result.recipient, result.verified) == ("news@corp.example", None, True)
    assert result.reason == verp.SENDER_ONLY


def test_each_message_gets_its_own_token(client, key_file):
    """Postfix asks once per message: two asks, two tokens, both verifying the sender."""
    cfg = cfg_for(key_file)
    replies = {client.ask("sender", "news@corp.example")[3:] for _ in range(20)}
    assert len(replies) == 20
    for address in replies:
        r = verp.decode(verp.split_address(address, cfg), cfg, NOW)
        assert (r.sender, r.verified) == ("news@corp.example", True)


def test_a_sender_too_long_for_the_nonce_keeps_the_plain_token(client, key_file):
    # 40 characters: fits the 46-octet body alone, not with the 7 of "==.NNNN".
    sender = "a" * 27 + "@corp.example"
    reply = client.ask("sender", sender)
    assert reply.startswith("OK ") and "==." not in reply
    cfg = cfg_for(key_file)
    r = verp.decode(verp.split_address(reply[3:], cfg), cfg, NOW)
    assert (r.sender, r.verified) == (sender, True)


def test_many_requests_on_one_connection(client):
    replies = [client.ask("sender", f"user{i}@corp.example") for i in range(20)]
    assert all(r.startswith("OK bounces+") for r in replies)
    assert len(set(replies)) == 20


def test_pipelined_requests_in_one_write(client):
    data = netstring(b"sender a@corp.example") + netstring(b"sender a@other.example")
    client.sock.sendall(data)
    assert client.read().startswith(b"OK ")
    assert client.read() == b"NOTFOUND "


def test_subdomain_pattern(client):
    assert client.ask("sender", "x@mail.sub.example").startswith("OK ")
    assert client.ask("sender", "x@sub.example") == "NOTFOUND "


@pytest.mark.parametrize(
    "key",
    [
        "",  # the null sender
        "alice@gmail.com",  # not a local domain: its bounces are not ours
        "bounces@relay.example",  # the bounce address itself
        "bounces+.abcdefghij@relay.example",  # already rewritten (re-injected mail)
        "MAILER-DAEMON@corp.example",
        "double-bounce@corp.example",
        "news",  # Postfix's partial keys: user, @domain
        "@corp.example",
        "x" * 60 + "@corp.example",  # too long to sign: left alone, logged
    ],
)
def test_sender_not_rewritten(client, key):
    assert client.ask("sender", key) == "NOTFOUND "


def test_reverse_map(client):
    address = client.ask("sender", "news@corp.example")[3:]
    assert client.ask("reverse", address) == "OK news@corp.example"
    local, _, dom = address.rpartition("@")
    forged = local[:12] + ("x" if local[12] != "x" else "y") + local[13:] + "@" + dom
    assert client.ask("reverse", forged) == "NOTFOUND "
    assert client.ask("reverse", "bounces+alice=example.com@relay.example") == "NOTFOUND "
    assert client.ask("reverse", "someone@relay.example") == "NOTFOUND "


def test_forward_map_disabled_by_default(client):
    address = client.ask("sender", "news@corp.example")[3:]
    assert client.ask("forward", address) == "NOTFOUND "


def test_forward_map_when_enabled(key_file):
    svc = SocketmapService(
        cfg_for(key_file, forward_to_sender=True), "inet:127.0.0.1:0", clock=lambda: NOW
    )
    svc.start()
    try:
        c = Client(svc.address)
        address = c.ask("sender", "news@corp.example")[3:]
        assert c.ask("forward", address) == f"OK {address}, news@corp.example"
        assert c.ask("forward", "bounces+alice=example.com@relay.example") == "NOTFOUND "
        c.close()
    finally:
        svc.stop()


def test_unknown_map_is_perm(client):
    assert client.ask("nosuchmap", "x") == "PERM unknown map name nosuchmap"
    assert client.raw(netstring(b"sender")) == b"PERM unknown map name sender"


def test_missing_key_file_is_temp(key_file, client):
    key_file.unlink()
    reply = client.ask("sender", "news@corp.example")
    assert reply.startswith("TEMP VERP key file ") and "does not exist" in reply


def test_broken_framing_closes_the_connection(client):
    client.sock.sendall(b"5:abc")  # short, then garbage instead of the comma
    client.sock.sendall(b"de;")
    with pytest.raises((EOFError, ConnectionResetError)):
        client.read()


def test_oversized_request_closes_the_connection(client):
    client.sock.sendall(b"9999999:")
    with pytest.raises((EOFError, ConnectionResetError)):
        client.read()


def test_unix_socket(tmp_path, key_file):
    path = tmp_path / "sm.sock"
    svc = SocketmapService(cfg_for(key_file), f"unix:{path}", clock=lambda: NOW)
    svc.start()
    try:
        assert svc.address == f"unix:{path}"
        assert oct(path.stat().st_mode & 0o777) == oct(0o660)
        c = Client(svc.address)
        assert c.ask("sender", "a@corp.example").startswith("OK ")
        c.close()
    finally:
        svc.stop()
    assert not path.exists()


@pytest.mark.parametrize("spec", ["tcp:1.2.3.4:5", "inet:nohost", "unix:relative", "inet:h:99999"])
def test_bad_listen_spec(spec):
    with pytest.raises(Exception, match="expected inet:HOST:PORT or unix"):
        server.parse_listen(spec)


def test_bounces_daemon_console_script(tmp_path, key_file):
    sock = tmp_path / "d.sock"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[verp]\nkey_file = "{key_file}"\ndomain = "relay.example"\n'
        f'[daemon]\nsocketmap_listen = "unix:{sock}"\nsender_domains = "corp.example"\n'
    )
    proc = subprocess.Popen(
        [script("bounces"), "--config", str(config), "daemon"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "daemon did not start"
            time.sleep(0.05)
        c = Client(f"unix:{sock}")
        reply = c.ask("sender", "news@corp.example")
        c.close()
        assert reply.startswith("OK bounces+.a")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert f"socketmap listening on unix:{sock}" in err
        assert not sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bounces_daemon_bad_listen_exits_78(tmp_path):
    p = subprocess.run(
        [script("bounces"), "daemon", "--socketmap", "tcp:x"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BOUNCE_HANDLER_CONFIG": ""},
    )
    assert p.returncode == 78 and "expected inet:HOST:PORT" in p.stderr


def test_bounces_daemon_nothing_to_run(tmp_path):
    p = subprocess.run(
        [script("bounces"), "daemon", "--socketmap", "", "--lmtp", ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 78 and "nothing to run" in p.stderr


def test_port_in_use_is_a_clear_error(service, key_file):
    p = subprocess.run(
        [script("bounces"), "daemon", "--socketmap", service.address, "--lmtp", ""],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 78 and f"cannot listen on {service.address}" in p.stderr
