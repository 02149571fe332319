"""doctor's building blocks: the fix commands it prints, run for real on real files.

The commands are shell lines built from paths and addresses: each test runs them with
``sh -c`` and reads the result back with Postfix's own ``postmap -q`` / ``postconf``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding, Report
from bounce_handler.doctor.postfix import Postconf
from bounce_handler.doctor.routing import listen_endpoint
from bounce_handler.doctor.schema import redact

POSTCONF = "/usr/sbin/postconf"


@pytest.fixture
def pc(tmp_path):
    if not os.path.exists(POSTCONF):
        from tests.support.services import require

        require("postfix", f"{POSTCONF} not found")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "main.cf").write_text("compatibility_level = 3.6\n")
    with open("/etc/postfix/master.cf") as fp:
        (etc / "master.cf").write_text(fp.read())
    return Postconf(str(etc))


def sh(line: str) -> None:
    proc = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (line, proc.stderr)


def test_redact_masks_the_password_only():
    url = "postgresql+psycopg://bounces:s3cr%40t@db.example:5432/bounces"
    assert redact(url, url) == "postgresql+psycopg://bounces:***@db.example:5432/bounces"
    assert redact(f"connection to {url} failed", url).count("s3cr") == 0
    assert redact("sqlite:////var/lib/b.db", "sqlite:////var/lib/b.db") == (
        "sqlite:////var/lib/b.db"
    )
    assert redact("x", "postgresql://bounces@db/b") == "x"  # no password, nothing to mask


@pytest.mark.parametrize("kind", ["texthash", "hash"])
def test_table_entry_commands_replace_any_case_of_the_key(pc, tmp_path, kind):
    """A duplicate key keeps its first value in postmap: the old line must go first.

    The key has every character that means something to sed or a regular expression.
    """
    table = tmp_path / "transport"
    key = "bounces+x.y*z[1]@relay.test"
    table.write_text(f"other@relay.test\tsmtp:\n{key.upper()}\tsmtp:[old]\n")
    if kind == "hash":
        sh(f"postmap -c {pc.config_dir} hash:{table}")
    for line in pc.set_entry_commands(f"{kind}:{table}", key, "verpbounce:"):
        sh(line)
    assert pc.lookup(f"{kind}:{table}", key) == "verpbounce:"
    assert pc.lookup(f"{kind}:{table}", "other@relay.test") == "smtp:"
    assert table.read_text().lower().count(key.lower()) == 1
    # Dropping a key (a `<>` REJECT in an access table).
    for line in pc.set_entry_commands(f"{kind}:{table}", key, None):
        sh(line)
    assert pc.lookup(f"{kind}:{table}", key) is None


def test_tables_doctor_cannot_edit_get_no_commands(pc):
    assert pc.set_entry_commands("pcre:/etc/postfix/x.pcre", "a@b", "x:") is None
    assert pc.set_entry_commands("pgsql:/etc/postfix/x.cf", "a@b", "x:") is None
    assert pc.set_entry_commands("hash:relative/path", "a@b", "x:") is None


def test_service_rewrite_keeps_the_entry_and_adds_double_dash(pc):
    entry = (
        "verpbounce unix - n n - 20 pipe flags=DORq null_sender= user=nobody "
        "argv=/opt/bh/bin/bounce-handler --config /etc/bh/config.toml ${extension}"
    )
    sh(pc.cmd("postconf", "-M", f"verpbounce/unix={entry}"))
    service = pc.service("verpbounce")
    _attrs, argv, _o = service.pipe_attrs()
    fixed = [*argv[:-1], "--", argv[-1]]
    sh(pc.set_service_command(service, service.with_argv(fixed)))
    again = Postconf(pc.config_dir).service("verpbounce")
    assert again.fields[:8] == service.fields[:8]
    assert again.pipe_attrs()[0] == {"flags": "DORq", "null_sender": "", "user": "nobody"}
    assert again.pipe_attrs()[1] == [
        "/opt/bh/bin/bounce-handler", "--config", "/etc/bh/config.toml", "--", "${extension}"
    ]


def test_domain_lists_follow_postfix_rules(pc, tmp_path):
    listed = tmp_path / "domains"
    listed.write_text("# comment\nfile.example, .sub.example\n")
    sh(pc.set_param_command(
        "relay_domains", f"literal.example, {listed}, !no.parent.example, parent.example"
    ))
    pc = Postconf(pc.config_dir)
    assert pc.domain_listed("relay_domains", "LITERAL.example.") == "literal.example"
    assert pc.domain_listed("relay_domains", "file.example") == str(listed)
    assert pc.domain_listed("relay_domains", "a.sub.example") == str(listed)
    assert pc.domain_listed("relay_domains", "sub.example") is None  # .sub: subdomains only
    # relay_domains is in parent_domain_matches_subdomains by default: a bare parent
    # matches its subdomains, unless a negation comes first.
    assert pc.domain_listed("relay_domains", "x.parent.example") == "parent.example"
    assert pc.domain_listed("relay_domains", "no.parent.example") is None
    assert pc.domain_listed("relay_domains", "other.example") is None


def test_listen_endpoint_spellings():
    assert listen_endpoint("inet:127.0.0.1:10028") == ("inet", "127.0.0.1:10028")
    assert listen_endpoint("unix:/run/bh/../bh/lmtp") == ("unix", "/run/bh/lmtp")
    assert listen_endpoint("127.0.0.1:10028") is None


def test_report_text_and_json_agree():
    report = Report("/etc/postfix-out", "postfix -c /etc/postfix-out reload")
    report.add([
        Finding(OK, "fine", check="a.ok"),
        Finding(WARNING, "slow", "after this:", commands=["cmd 1"], check="b.warn"),
        Finding(PROBLEM, "broken", commands=["cmd 2", "cmd 3"], reload=True, check="c.bad"),
    ])
    report.postfix_running = True
    text = report.text().splitlines()
    assert text == [
        "ok       fine",
        "warning  slow",
        "         fix: after this:",
        "              cmd 1",
        "PROBLEM  broken",
        "         fix: cmd 2",
        "              cmd 3",
        "then:    postfix -c /etc/postfix-out reload",
        "1 problem found in /etc/postfix-out.",
    ]
    data = report.as_json()
    assert (data["status"], data["exit"], data["problems"], data["warnings"]) == (
        "problem", 1, 1, 1
    )
    assert data["reload"] == "postfix -c /etc/postfix-out reload"
    assert [f["status"] for f in data["findings"]] == ["ok", "warning", "problem"]
    report.postfix_running = False
    assert "then:    nothing: Postfix is stopped" in report.text()
