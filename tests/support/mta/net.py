"""The private network a real MTA under test lives in: run as PID 1 of its namespaces.

Started by ``tests/support/mta/lab.py`` as::

    unshare --pid --fork --kill-child --mount-proc --net --mount --uts \
        --propagation private -- python net.py LAB_DIR

so everything below happens inside fresh namespaces and nothing touches the host:

- **network**: a loopback of its own (brought up here), so the MTA can use port 25 and a
  resolver on port 53 without meeting anything else on the machine;
- **UTS**: a fully qualified host name (Sendmail 8.17 waits ~60 s per command when
  ``gethostname()`` is not an FQDN);
- **mounts**: ``/etc/resolv.conf``, ``/etc/hosts``, ``/etc/passwd`` and ``/etc/group`` are
  replaced by private copies (the MTA's system users exist only here), and the lab may put
  tmpfs, overlay or bind mounts over paths an unpacked package has compiled in
  (OpenSMTPD's /var/spool/smtpd, /var/lib/opensmtpd/empty and /run/smtpd.sock; Courier's
  /etc/courier, /usr/lib/courier, /var/lib/courier; DMA's /etc/dma/dma.conf);
- **PID**: when this process dies every MTA process started in the namespace dies with it,
  so a crashed test leaves no daemon behind.

Then it serves the fake Internet the MTA delivers to, described by ``LAB_DIR/lab.json``:

- a DNS server on 127.0.0.1:53 answering from the lab's zone (MX and A records pointing
  at the fake remote servers below); any name outside the zone gets **NXDOMAIN**, a name in
  it without the record type asked for gets an empty NOERROR answer;
- the remote SMTP server on 127.0.0.2:25 (aiosmtpd) whose answers depend on the
  recipient's local part (``REPLIES``), which also accepts mail for the sender's domain
  and keeps it in ``LAB_DIR/captured/`` (the bounces the MTA sends back);
- 127.0.0.3:25 greets with a 554 (a host that refuses the connection) and
  127.0.0.4:25 greets with a 421 and hangs up (a host that is always busy);
- 127.0.0.5:25 answers like the main server but advertises PIPELINING and answers DATA
  after every RCPT failed with Postfix's "554 5.5.1 Error: no valid recipients";
- 127.0.0.6:25 refuses every envelope sender but the null one (``SENDER_REPLY``).

Only the standard library and aiosmtpd: this file runs as a script, not inside pytest.
Every SMTP exchange and DNS answer is logged to ``LAB_DIR/remote.log``.  ``net.py --send``
(run inside a lab with nsenter) submits one message described by JSON on stdin.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

MAIN_IP, REFUSE_IP, BUSY_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
PIPELINING_IP, SENDER_IP = "127.0.0.5", "127.0.0.6"

# Reply per recipient local part (the part before the first "-"): phase, reply.  Texts are
# modelled on what real receivers say; the enhanced codes are the ones the issue lists.
# "{rcpt}" is the recipient, "{ip}" the sending MTA's address as the remote sees it.
# A multi-line reply is written with "\r\n" between its lines (RFC 5321 4.2.1).
REPLIES = {
    "unknown": ("rcpt", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"),
    "full": ("rcpt", "552 5.2.2 <{rcpt}>: Mailbox full, quota exceeded"),
    "content": ("data", "554 5.7.1 Message rejected by content policy"),
    "big": ("data", "552 5.3.4 Message size exceeds fixed maximum message size"),
    # Postfix smtpd with reject_rbl_client (its documented default reply text).
    "listed": ("rcpt", "554 5.7.1 Service unavailable; Client host [{ip}] blocked using "
               "zen.spamhaus.org; https://www.spamhaus.org/query/ip/{ip}"),
    # Gmail's DMARC rejection after DATA (multi-line, the sentence broken across lines).
    "dmarc": ("data", "550-5.7.26 Unauthenticated email from origin.test is not accepted "
              "due to domain's\r\n550-5.7.26 DMARC policy. Please contact the "
              "administrator of origin.test domain\r\n550 5.7.26 if this was a legitimate "
              "mail. - lab"),
    # Gmail's disabled account.
    "disabled": ("rcpt", "550-5.2.1 The email account that you tried to reach is disabled."
                 "\r\n550 5.2.1 See the provider's help pages. - lab"),
    # RFC 5321 3.4 / 551 "User not local; please try <forward-path>": the new address in
    # the reply is not a recipient of the message.
    "moved": ("rcpt", "551 5.1.6 <{rcpt}>: Recipient has moved; please try "
              "<new-address@elsewhere.test>"),
    # Postfix smtpd's reject_unauth_destination.
    "relay": ("rcpt", "554 5.7.1 <{rcpt}>: Relay access denied"),
    # Yahoo's throttle, answered to every RCPT until the sender's queue lifetime ends.
    "throttled": ("rcpt", "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due "
                  "to unexpected volume or user complaints - 4.16.55.1; see "
                  "https://postmaster.yahooinc.com/error-codes"),
    # Gmail's rate limit for unsolicited mail (450 4.7.28), every RCPT until expiry.
    "unusual": ("rcpt", "450-4.7.28 [{ip}] Our system has detected an unusual rate of\r\n"
                "450-4.7.28 unsolicited mail originating from your IP address. Mail from\r\n"
                "450 4.7.28 it has been temporarily rate limited. - lab"),
    # Gmail's refusal of a host sending directly instead of through its provider's relay
    # (multi-line, at RCPT): Sendmail 8.17 reads only the first line and files the refusal
    # as its own "550 5.1.1 ... User unknown", Status: 5.1.1.
    "notauth": ("rcpt", "550-5.7.1 [{ip}] The IP you are using to send mail is not "
                "authorized to\r\n550-5.7.1 send email directly to our servers. Please use "
                "the SMTP relay at your\r\n550 5.7.1 service provider instead. - lab"),
    # Postfix smtpd's answer to the end of DATA when it cannot write its queue file,
    # given until the sender's queue lifetime ends: every accepted recipient is deferred.
    "tempdata": ("data", "452 4.3.1 Insufficient system storage"),
}
# The remote behind sender.test refuses the envelope sender, whoever the recipient
# (Postfix smtpd's check_sender_access REJECT).
SENDER_REPLY = "550 5.7.1 <{sender}>: Sender address rejected: Access denied"
# The remote behind pipelining.test advertises PIPELINING and answers DATA after every
# RCPT failed as Postfix's smtpd does (RFC 2920 3.1: the client sends DATA regardless).
NO_VALID_RECIPIENTS = "554 5.5.1 Error: no valid recipients"
REFUSE_BANNER = "554 5.7.1 mx.refuse.test ESMTP not accepting mail from your host: blocked"
BUSY_BANNER = "421 4.3.2 mx.busy.test Service not available, try again later"


# -- namespace set-up -----------------------------------------------------------------


def loopback_up() -> None:
    """``ip link set lo up`` without needing iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s, siocgifflags, ifreq))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh14x", b"lo", flags | iff_up))


def add_loopback_alias(address: str) -> None:
    """A second address on lo (``lo:lab``), set with the old SIOCSIFADDR ioctl.

    OpenSMTPD's resolver (its bundled libasr) honours AI_ADDRCONFIG by skipping IPv4
    altogether when the only IPv4 address is 127.0.0.1 -- it would never look up an MX
    host's A record and report "No MX found for domain".  Any other address will do.
    """
    siocsifaddr = 0x8916
    sockaddr = struct.pack("HH4s8x", socket.AF_INET, 0, socket.inet_aton(address))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, siocsifaddr, struct.pack("16s16s", b"lo:lab", sockaddr))


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, stdin=subprocess.DEVNULL)


def setup_namespace(lab: dict, lab_dir: str) -> None:
    loopback_up()
    add_loopback_alias("127.0.0.254")
    socket.sethostname(lab["hostname"])
    etc = os.path.join(lab_dir, "etc-ns")
    os.makedirs(etc, exist_ok=True)
    files = {
        "resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
        "hosts": f"127.0.0.1\tlocalhost {lab['hostname']} {lab['hostname'].split('.')[0]}\n",
    }
    for name in ("passwd", "group"):
        with open(f"/etc/{name}") as fp:
            files[name] = fp.read().rstrip("\n") + "\n" + "".join(
                line + "\n" for line in lab.get(name, []))
    # tmpfs and overlays first, the private /etc files on top: a lab may overlay /etc
    # itself (DMA's compiled-in /etc/dma/dma.conf, absent on the host) and must still see
    # the lab's resolver, hosts and users.
    for target in lab.get("tmpfs", []):
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", target)
    # An overlay lets the MTA find its compiled-in paths (/var/spool/smtpd, ...) under a
    # host directory without creating anything in the host's copy of it.
    for n, target in enumerate(lab.get("overlays", [])):
        upper, work = (os.path.join(lab_dir, f"overlay{n}", x) for x in ("upper", "work"))
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        mount("-t", "overlay", "overlay", "-o",
              f"lowerdir={target},upperdir={upper},workdir={work}", target)
    for name, text in files.items():
        path = os.path.join(etc, name)
        with open(path, "w") as fp:
            fp.write(text)
        os.chmod(path, 0o644)
        mount("--bind", path, f"/etc/{name}")
    for path, mode in lab.get("mkdirs", []):
        os.makedirs(path, exist_ok=True)
        os.chmod(path, int(mode, 8))
    for src, dst in lab.get("binds", []):
        if not os.path.exists(dst):
            if os.path.isdir(src):
                os.makedirs(dst, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                open(dst, "a").close()
        mount("--bind", src, dst)


# -- DNS --------------------------------------------------------------------------------

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA"}


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def dns_answer(query: bytes, zone: dict) -> bytes | None:
    """The response to one DNS query (None for anything that is not a plain query)."""
    if len(query) < 17:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    pos, labels = 12, []
    while pos < len(query) and query[pos]:
        n = query[pos]
        labels.append(query[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    pos += 1
    if pos + 4 > len(query):
        return None
    qtype, _qclass = struct.unpack("!HH", query[pos:pos + 4])
    question = query[12:pos + 4]
    name = ".".join(labels).lower()
    records = zone.get(name)
    answers = []
    rcode = 3 if records is None else 0  # NXDOMAIN for any name outside the zone
    for value in (records or {}).get(TYPES.get(qtype, "?"), []):
        if qtype == 1:
            rdata = socket.inet_aton(value)
        elif qtype == 15:
            rdata = struct.pack("!H", value[0]) + encode_name(value[1])
        elif qtype in (12, 5, 2):
            rdata = encode_name(value)
        else:
            continue
        # 0xC00C: a pointer to the question's name.
        answers.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, 60, len(rdata)) + rdata)
    rd = flags & 0x0100
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                         len(answers), 0, 0)
    return header + question + b"".join(answers)


def serve_dns(zone: dict, log) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))

    def loop():
        while True:
            query, peer = sock.recvfrom(4096)
            try:
                reply = dns_answer(query, zone)
            except Exception as e:  # a malformed query must not stop the resolver
                log(f"dns: {e!r}")
                continue
            if reply:
                log(f"dns: {query[12:60]!r} -> rcode {reply[3] & 15}, "
                    f"{struct.unpack('!H', reply[6:8])[0]} answer(s)")
                sock.sendto(reply, peer)

    threading.Thread(target=loop, daemon=True).start()


# -- SMTP -------------------------------------------------------------------------------


class Remote:
    """aiosmtpd handler: the receiving side of every recipient domain in the lab."""

    def __init__(self, lab: dict, lab_dir: str, log, *, mail_reply: str | None = None,
                 pipelining: bool = False) -> None:
        self.capture_domain = lab["capture_domain"].lower()
        self.captured = os.path.join(lab_dir, "captured")
        os.makedirs(self.captured, exist_ok=True)
        self.log = log
        self.count = 0
        self.mail_reply = mail_reply
        self.pipelining = pipelining

    @staticmethod
    def behaviour(address: str):
        local = address.rsplit("@", 1)[0].lower()
        return REPLIES.get(local.split("-")[0])

    @staticmethod
    def reply(text: str, session, **names) -> str:
        ip = (session.peer or ("?",))[0] if session else "?"
        return text.format(ip=ip, **names)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.log(f"MAIL FROM <{address}> {mail_options}")
        # The notices the MTA sends back (null sender) are always taken.
        if self.mail_reply and address:
            return self.reply(self.mail_reply, session, sender=address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.log(f"RCPT {address} {rcpt_options}")
        b = self.behaviour(address)
        if b and b[0] == "rcpt":
            if b[1].startswith("421"):
                # RFC 5321 3.8: a 421 closes the channel.  Yahoo hangs up after TSS04; a
                # server that waits for QUIT instead makes Sendmail report "221 Bye" as
                # the diagnostic.  Closed once the reply is written (close() flushes).
                asyncio.get_running_loop().call_soon(server.transport.close)
            return self.reply(b[1], session, rcpt=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            b = self.behaviour(address)
            if b and b[0] == "data":
                self.log(f"DATA from {envelope.mail_from} refused: {b[1]}")
                return self.reply(b[1], session, rcpt=address)
        if any(a.lower().endswith("@" + self.capture_domain) for a in envelope.rcpt_tos):
            self.count += 1
            stem = os.path.join(self.captured, f"{time.time_ns()}-{self.count:04d}")
            with open(stem + ".eml.tmp", "wb") as fp:
                fp.write(envelope.original_content or envelope.content)
            with open(stem + ".json", "w") as fp:
                json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, fp)
            os.rename(stem + ".eml.tmp", stem + ".eml")
        self.log(f"DATA from <{envelope.mail_from}> to {envelope.rcpt_tos}: accepted")
        return "250 2.0.0 Ok: queued"


def greeter(banner: str, log, stay: bool):
    """A server that greets with `banner`: 554 waits for QUIT (RFC 5321 3.1), 421 hangs up."""

    async def handle(reader, writer):
        log(f"connect to greeter: {banner[:3]}")
        writer.write(banner.encode() + b"\r\n")
        await writer.drain()
        if stay:
            try:
                while True:
                    line = await asyncio.wait_for(reader.readline(), 30)
                    if not line:
                        break
                    log(f"greeter got {line[:60]!r}")
                    if line.strip().upper().startswith(b"QUIT"):
                        writer.write(b"221 2.0.0 Bye\r\n")
                        await writer.drain()
                        break
                    writer.write(b"503 5.5.1 Bad sequence of commands\r\n")
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                pass
        writer.close()

    return handle


def smtp_class():
    """aiosmtpd's SMTP, answering DATA without a valid recipient as Postfix's smtpd does
    when the remote says so (aiosmtpd's own "503 Error: need RCPT command" otherwise)."""
    from aiosmtpd.smtp import SMTP, syntax

    class LabSMTP(SMTP):
        no_valid_recipients: str | None = None

        @syntax("DATA")
        async def smtp_DATA(self, arg: str) -> None:
            if (self.no_valid_recipients and self.envelope is not None
                    and self.session.host_name and not self.envelope.rcpt_tos):
                await self.push(self.no_valid_recipients)
                return
            await super().smtp_DATA(arg)

    return LabSMTP


async def serve(lab: dict, lab_dir: str, log) -> None:
    smtp = smtp_class()
    remote = Remote(lab, lab_dir, log)
    sender_remote = Remote(lab, lab_dir, log, mail_reply=SENDER_REPLY)
    pipelining_remote = Remote(lab, lab_dir, log, pipelining=True)

    def pipelining_server():
        server = smtp(pipelining_remote, hostname="mx.pipelining.test", data_size_limit=None)
        server.no_valid_recipients = NO_VALID_RECIPIENTS
        return server

    loop = asyncio.get_running_loop()
    await loop.create_server(
        lambda: smtp(remote, hostname="mx.rcpt.test", data_size_limit=None), MAIN_IP, 25)
    await loop.create_server(
        lambda: smtp(sender_remote, hostname="mx.sender.test", data_size_limit=None),
        SENDER_IP, 25)
    await loop.create_server(pipelining_server, PIPELINING_IP, 25)
    await asyncio.start_server(greeter(REFUSE_BANNER, log, True), REFUSE_IP, 25)
    await asyncio.start_server(greeter(BUSY_BANNER, log, False), BUSY_IP, 25)
    with open(os.path.join(lab_dir, "ready"), "w") as fp:
        fp.write(str(os.getpid()))
    await asyncio.Event().wait()


def main(lab_dir: str) -> None:
    with open(os.path.join(lab_dir, "lab.json")) as fp:
        lab = json.load(fp)
    logf = open(os.path.join(lab_dir, "remote.log"), "a", buffering=1)

    def log(text: str) -> None:
        logf.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    # PID 1 ignores signals it has no handler for.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        setup_namespace(lab, lab_dir)
    except Exception as e:
        with open(os.path.join(lab_dir, "failed"), "w") as fp:
            fp.write(f"namespace set-up failed: {e!r}\n")
        raise
    # As PID 1 we inherit every daemon's orphans: reap them automatically.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    serve_dns(lab["zone"], log)
    asyncio.run(serve(lab, lab_dir, log))


def send(request: dict) -> None:
    """Submit one message over SMTP (run inside the namespace: ``net.py --send`` + JSON)."""
    import smtplib

    with smtplib.SMTP(request.get("host", "127.0.0.1"), request.get("port", 25),
                      local_hostname="client.origin.test", timeout=60) as smtp:
        smtp.ehlo()
        refused = smtp.sendmail(request["mail_from"], request["rcpts"],
                                request["data"].encode("utf-8"),
                                mail_options=request.get("mail_options", []),
                                rcpt_options=request.get("rcpt_options", []))
    if refused:
        print(json.dumps({"refused": {k: [v[0], v[1].decode()] for k, v in refused.items()}}))


if __name__ == "__main__":
    if sys.argv[1] == "--send":
        send(json.load(sys.stdin))
    else:
        main(sys.argv[1])
