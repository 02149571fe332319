"""`bounces doctor` against deliberately broken private Postfix configurations.

Each case starts from a correct instance (the configuration tests/support/postfix.py runs
end-to-end) and breaks one thing; doctor must name it, give a fix, and exit 1.  Postfix is
not started: doctor only reads `postconf -c DIR` and the files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.conftest import script
from tests.support import postfix as pfmod

pytestmark = pytest.mark.postfix


class Setup:
    def __init__(self, base, pipe_bin, template):
        self.base = base
        # The end of deploy/postfix/master.cf's argv.
        self.relay = pfmod.Relay(base, pipe_bin, sqlite_template=template, handler_macros=[
            "--client-address", "${client_address}", "--", "${extension}"])
        self.pf = self.relay.postfix
        self.pf.write_config()

    def doctor(self, *extra):
        proc = subprocess.run(
            [
                script("bounces"),
                "--config",
                self.relay.config,
                "doctor",
                "-c",
                self.pf.config_dir,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def postconf(self, *args):
        self.pf.postconf(*args)


@pytest.fixture
def setup(pipe_bin, _migrated_template):
    base = tempfile.mkdtemp(prefix="bh-doctor-", dir="/tmp")
    try:
        yield Setup(base, pipe_bin, str(_migrated_template))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("PROBLEM")]


def test_correct_configuration_passes(setup):
    code, out = setup.doctor()
    assert code == 0, out
    assert problems(out) == []
    assert "verpbounce_destination_recipient_limit = 1" in out
    assert "transport_maps: bounces@relay.test -> verpbounce:" in out
    assert "no problems found" in out


def test_pipe_service_named_bounce(setup):
    master = os.path.join(setup.pf.config_dir, "master.cf")
    lines = open(master).read().splitlines()
    # Drop the stock bounce daemon and rename our pipe to `bounce`, as some guides do.
    lines = [ln for ln in lines if not ln.startswith("bounce ")]
    text = "\n".join(lines).replace("verpbounce unix", "bounce unix") + "\n"
    with open(master, "w") as fp:
        fp.write(text)
    setup.postconf("-e", "bounce_destination_recipient_limit=1")
    code, out = setup.doctor()
    assert code == 1
    assert any("service `bounce` runs pipe" in p for p in problems(out)), out
    assert "fix: rename the pipe entry" in out


def test_missing_recipient_delimiter(setup):
    setup.postconf("-X", "recipient_delimiter")
    code, out = setup.doctor()
    assert code == 1
    assert any("recipient_delimiter is not set" in p for p in problems(out)), out
    assert f"fix: postconf -c {setup.pf.config_dir} -e 'recipient_delimiter = +'" in out


def test_missing_recipient_limit(setup):
    setup.postconf("-X", "verpbounce_destination_recipient_limit")
    code, out = setup.doctor()
    assert code == 1
    # The default is $default_destination_recipient_limit = 50.
    assert any("verpbounce_destination_recipient_limit = 50" in p for p in problems(out)), out


def test_argv_not_executable_by_the_pipe_user(setup):
    hidden = os.path.join(setup.base, "private")
    os.makedirs(hidden, mode=0o700)
    exe = os.path.join(hidden, "bounce-handler")
    shutil.copy(os.path.join(setup.relay.bin_dir, "bounce-handler"), exe)
    master = os.path.join(setup.pf.config_dir, "master.cf")
    text = open(master).read().replace(setup.pf.handler_argv[0], exe)
    with open(master, "w") as fp:
        fp.write(text)
    code, out = setup.doctor()
    assert code == 1
    assert any(f"directory {hidden} is not searchable by nobody" in p for p in problems(out)), out


def test_database_not_writable_by_the_pipe_user(setup):
    os.chown(setup.relay.db_path, 0, 0)
    os.chmod(setup.relay.db_path, 0o644)
    code, out = setup.doctor()
    assert code == 1
    assert any("the pipe user cannot write the database" in p for p in problems(out)), out
    assert "fix: chown nobody:nogroup" in out


def test_too_short_time_limit(setup):
    setup.postconf("-e", "verpbounce_time_limit=10s")
    code, out = setup.doctor()
    assert code == 1
    assert any("verpbounce_time_limit = 10s is shorter than" in p for p in problems(out)), out


def test_migrations_not_at_head(setup):
    os.unlink(setup.relay.db_path)
    import sqlite3

    sqlite3.connect(setup.relay.db_path).close()  # exists, empty: never migrated
    pfmod.give_to_pipe_user(setup.relay.db_path)
    code, out = setup.doctor()
    assert code == 1
    assert any("database schema at nothing" in p for p in problems(out)), out
    assert (
        f"fix: runuser -u nobody -- {script('bounces')} --config {setup.relay.config} db upgrade"
        in out
    )


def test_bounce_address_not_routed_to_the_pipe(setup):
    with open(os.path.join(setup.pf.config_dir, "transport"), "w") as fp:
        fp.write(f"{setup.pf.bounce_address}\tsmtp:\n")
    code, out = setup.doctor()
    assert code == 1
    assert any(
        "routes bounces@relay.test to smtp:, not to verpbounce" in p for p in problems(out)
    ), out


def test_start_up_caches_missing_or_stale_is_a_warning_with_the_fix(setup):
    from bounce_handler import settings as settings_mod

    config = str(setup.relay.config)
    code, out = setup.doctor()
    assert code == 0, out  # slower, not broken: no problem, no failure
    assert f"warning  missing or stale for {config}: the parsed-config cache" in out
    assert "precompiled patterns" in out
    assert f"fix: {script('bounces')} --config {config} config check" in out

    from bounce_handler.cli import caches

    assert caches.write(settings_mod.load(config))  # what `config check` does
    code, out = setup.doctor()
    assert code == 0, out
    assert f"the pipe's start-up caches for {config} are current" in out
    assert "warning" not in out

    st = os.stat(config)
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # edited since
    code, out = setup.doctor()
    assert "warning  missing or stale" in out and "parsed-config cache" in out
    assert "precompiled patterns" not in out  # the table does not depend on the file
