"""Least privilege: the handler as `nobody`, with only the modes deploy/ documents.

Each missing permission (store directory or file, config, VERP key file, spool) must be
exit 75 -- the bounce waits in Postfix's queue until the administrator fixes the mode --
with a line that names the file and why.  Secrets (the key file's secrets, a database
password in the URL) never appear in the handler's output or log line.
"""

from __future__ import annotations

import os
import pwd
import shutil

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler import verp
from tests.faults.helpers import assert_clean, run_handler, variant

SECRET_HEX = "5ec7e7" + "ab" * 29  # 32 bytes, recognisable in any output


@pytest.fixture
def layout(request, store, pipe_bin):
    """A deployment tree as deploy/spool-and-lmtp.md prescribes, owned for `nobody`.

    pipe_bin: a bounce-handler nobody can execute (the dev venv, or a deploy/install.sh
    deployment when the checkout is under a private directory), so these tests run in CI
    wherever the clone lives instead of skipping.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to run the handler as nobody")
    nobody = pwd.getpwnam("nobody")
    # pytest's tmp root is 0700 root: nobody could not even reach the files. A tree of
    # its own under /tmp, like /etc and /var/lib, is reachable by everyone.
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="bh-deploy-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    etc, lib = root / "etc", root / "lib"
    etc.mkdir()
    lib.mkdir()
    os.chmod(root, 0o755)
    db = lib / "bounces.db"
    shutil.copy(store.db, db)
    keys = etc / "verp.keys"
    keys.write_text(f"k {SECRET_HEX}\n")
    cfg = etc / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{db}"\nbusy_timeout = 2.0\n'
        f'[verp]\nkey_file = "{keys}"\n[log]\ntarget = "stderr"\n'
    )
    # The documented modes: store dir and file owned by the pipe user, not world
    # readable; config and key file root-owned, group of the pipe user, 0640.
    os.chown(lib, nobody.pw_uid, nobody.pw_gid)
    os.chmod(lib, 0o750)
    os.chown(db, nobody.pw_uid, nobody.pw_gid)
    os.chmod(db, 0o640)
    for f in (cfg, keys):
        os.chown(f, 0, nobody.pw_gid)
        os.chmod(f, 0o640)
    os.chmod(etc, 0o755)
    s = settings_mod.load(str(cfg))
    signed = verp.encode("alice@example.net", "news@corp.example", s, __import__("time").time())
    ext = verp.split_address(signed, s)
    assert ext.startswith(".")  # the signed form: decoding it needs the key file
    return {"cfg": cfg, "db": db, "lib": lib, "keys": keys, "etc": etc, "ext": ext, "root": root,
            "handler": os.path.join(pipe_bin, "bounce-handler")}


def as_nobody(layout, ext=None, data=None):
    ext = ext or layout["ext"]
    data = data or variant(0, bounces_only=True)[1]
    res, _, _ = run_handler(layout["cfg"], ext, data, user="nobody", handler=layout["handler"])
    assert_clean(res)
    return res


def test_documented_modes_are_enough(layout):
    res = as_nobody(layout)
    assert res.returncode == 0, res.text
    assert SECRET_HEX.encode() not in res.stdout + res.stderr


def test_unreadable_store_directory_is_75_naming_it(layout):
    os.chown(layout["lib"], 0, 0)
    os.chmod(layout["lib"], 0o700)
    res = as_nobody(layout)
    assert res.returncode == 75
    assert str(layout["db"]).encode() in res.stdout
    assert b"uid 65534" in res.stdout or b"does not exist" in res.stdout


def test_unwritable_store_file_is_75_naming_it(layout):
    os.chown(layout["db"], 0, 0)
    os.chmod(layout["db"], 0o644)
    res = as_nobody(layout)
    assert res.returncode == 75
    assert str(layout["db"]).encode() in res.stdout
    assert b"read-only" in res.stdout or b"cannot open" in res.stdout


def test_unreadable_config_is_75_naming_it(layout):
    os.chmod(layout["cfg"], 0o600)
    cache = layout["etc"] / ".config.toml.cache"
    if cache.exists():
        cache.unlink()
    res = as_nobody(layout)
    assert res.returncode == 75
    assert f"cannot read config file {layout['cfg']}: Permission denied".encode() in res.stdout


def test_unreadable_verp_key_file_is_75_naming_it_without_the_secret(layout):
    os.chmod(layout["keys"], 0o600)
    res = as_nobody(layout)
    assert res.returncode == 75, res.text
    assert str(layout["keys"]).encode() in res.stdout
    assert b"permission denied" in res.stdout.lower()
    assert SECRET_HEX.encode() not in res.stdout + res.stderr


def test_broken_key_file_never_echoes_secret_material(layout):
    layout["keys"].write_text(f"k {SECRET_HEX}zz-not-hex\n")
    res = as_nobody(layout)
    assert res.returncode == 75
    assert b"not hexadecimal" in res.stdout
    assert SECRET_HEX.encode() not in res.stdout + res.stderr


def test_unwritable_spool_is_75_naming_it(layout):
    spool_dir = layout["root"] / "spool"
    for sub in ("", "tmp", "new"):
        (spool_dir / sub).mkdir(exist_ok=True)
        os.chmod(spool_dir / sub, 0o755)  # root's, not the pipe user's
    cfg = layout["cfg"]
    text = cfg.read_text().replace(
        f'url = "sqlite:///{layout["db"]}"',
        f'url = "postgresql+psycopg://bounce:Pw0rdInUrl@127.0.0.1:1/b"\nspool_dir = "{spool_dir}"',
    )
    cfg.write_text(text)
    res = as_nobody(layout)
    assert res.returncode == 75
    assert f"spool {spool_dir / 'tmp'}".encode() in res.stdout
    assert b"not writable by uid 65534" in res.stdout
    assert b"Pw0rdInUrl" not in res.stdout + res.stderr


def test_database_password_never_in_output(tmp_path):
    # direct mode against a closed port: whatever the driver says, no password.
    cfg = tmp_path / "pg.toml"
    cfg.write_text(
        '[database]\nurl = "postgresql+psycopg://bounce:Pw0rdInUrl@127.0.0.1:1/b"\n'
        'pg_mode = "direct"\n[log]\ntarget = "stderr"\n'
    )
    res, _, _ = run_handler(cfg, "alice=example.net", variant(0, bounces_only=True)[1])
    assert_clean(res)
    assert res.returncode == 75
    assert b"Pw0rdInUrl" not in res.stdout + res.stderr
