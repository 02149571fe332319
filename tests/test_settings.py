"""Settings: one TOML file, validated once, cached for the pipe without ever going stale."""

from __future__ import annotations

import os

import pytest

from bounce_handler import settings


def test_defaults_are_documented_and_typed():
    s = settings.defaults()
    for section, keys in settings.SCHEMA.items():
        for key, (typ, default, why) in keys.items():
            assert type(default) is typ, f"[{section}] {key}"
            assert len(why) > 20, f"[{section}] {key} needs a why"
            assert getattr(getattr(s, section), key) == default
    assert s.database.url == "sqlite:////var/lib/bounce-handler/bounces.db"
    assert s.intake.max_message_bytes == 10 * 1024 * 1024


def test_settings_are_frozen():
    s = settings.defaults()
    with pytest.raises(AttributeError):
        s.database.url = "x"
    with pytest.raises(AttributeError):
        s.database = None


def test_explicit_missing_file_is_an_error_default_missing_is_defaults(tmp_path, monkeypatch):
    with pytest.raises(settings.ConfigError, match="does not exist"):
        settings.load(str(tmp_path / "missing.toml"))
    monkeypatch.delenv(settings.ENV_VAR, raising=False)
    monkeypatch.setattr(settings, "DEFAULT_PATH", str(tmp_path / "absent.toml"))
    assert settings.load().path is None


def test_env_var_names_the_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "sqlite:////tmp/x.db"\n')
    monkeypatch.setenv(settings.ENV_VAR, str(cfg))
    assert settings.load().database.url == "sqlite:////tmp/x.db"
    # --config wins over the environment
    other = tmp_path / "o.toml"
    other.write_text('[database]\nurl = "sqlite:////tmp/o.db"\n')
    assert settings.load(str(other)).database.url == "sqlite:////tmp/o.db"


@pytest.mark.parametrize(
    "text,message",
    [
        ("[databse]\nurl = 'x'\n", "unknown section [databse]"),
        ("[database]\nurll = 'x'\n", "unknown key 'urll' in [database]"),
        ("[database]\nbusy_timeout = 'soon'\n", "busy_timeout must be float"),
        ("[intake]\nkeep_raw = 1\n", "keep_raw must be bool"),
        ("[database\n", "not valid TOML"),
        ("database = 3\n", "[database] must be a table"),
    ],
)
def test_invalid_files_are_clear_errors(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(settings.ConfigError) as e:
        settings.load(str(cfg))
    assert message in str(e.value)
    assert str(cfg) in str(e.value) or "not valid" not in message


def test_int_is_accepted_for_float():
    assert settings.from_dict({"database": {"busy_timeout": 5}}).database.busy_timeout == 5.0


def test_cache_is_used_and_never_stale(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "sqlite:////tmp/one.db"\n')
    s = settings.load(str(cfg))
    cache = settings.write_cache(s)
    assert cache and os.path.exists(cache)
    assert os.stat(cache).st_mode & 0o777 == os.stat(cfg).st_mode & 0o777
    assert settings.load(str(cfg)) == s
    # the cache really is what is read: a different cached value shows through
    import marshal

    with open(cache, "rb") as fp:
        stamp, data = marshal.load(fp)
    data["database"]["url"] = "sqlite:////tmp/from-cache.db"
    with open(cache, "wb") as fp:
        marshal.dump((stamp, data), fp)
    assert settings.load(str(cfg)).database.url == "sqlite:////tmp/from-cache.db"
    # an edit of the file (size/mtime change) makes the cache stale: the file wins
    cfg.write_text('[database]\nurl = "sqlite:////tmp/two-longer.db"\n')
    assert settings.load(str(cfg)).database.url == "sqlite:////tmp/two-longer.db"


def test_corrupt_cache_falls_back_to_the_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "sqlite:////tmp/one.db"\n')
    settings.write_cache(settings.load(str(cfg)))
    (tmp_path / ".c.toml.cache").write_bytes(b"\x00garbage")
    assert settings.load(str(cfg)).database.url == "sqlite:////tmp/one.db"


def test_config_show_prints_every_key(store):
    proc = store.bounces("config", "show", "--defaults")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    for section, keys in settings.SCHEMA.items():
        assert f"[{section}]" in out
        for key in keys:
            assert f"\n{key} = " in out


def test_config_show_masks_database_password(store):
    store.config.write_text('[database]\nurl = "postgresql+psycopg://u:s3cret@db/x"\n')
    proc = store.bounces("config", "show")
    assert proc.returncode == 0, proc.stderr
    assert b"s3cret" not in proc.stdout and b"***" in proc.stdout


def test_config_check_validates_rules_and_writes_the_cache(store):
    proc = store.bounces("config", "check")
    assert proc.returncode == 0, proc.stderr
    assert (store.root / ".config.toml.cache").exists()
    store.write_config("[rules.dead_recipient]\nsoft_dayz = 3\n")
    proc = store.bounces("config", "check")
    assert proc.returncode == 78
    assert b"unknown key 'soft_dayz' in [rules.dead_recipient]" in proc.stderr


# -- values that mean something else (issue 14, item 8) ------------------------------------
# TOML reads inf, nan and 1e300 as floats and -1 as an int; all passed the type check and
# then meant something else: busy_timeout = inf/nan/1e300 behaved as 0 s (sqlite3 and
# PostgreSQL take int milliseconds), max_message_bytes = -1 as no limit, and
# log.target = "bogus" as syslog.
MEANINGLESS = [
    ("[database]\nbusy_timeout = inf\n", "[database] busy_timeout must be a finite number"),
    ("[database]\nbusy_timeout = nan\n", "[database] busy_timeout must be a finite number"),
    ("[database]\nbusy_timeout = 1e300\n", "[database] busy_timeout must be a finite number"),
    ("[database]\nbusy_timeout = -1\n", "[database] busy_timeout must be a finite number"),
    ("[database]\nbusy_timeout = 0\n", "[database] busy_timeout must be a finite number"),
    ("[intake]\nmax_message_bytes = -1\n", "[intake] max_message_bytes must be a finite"),
    ("[intake]\nmax_message_bytes = 0\n", "[intake] max_message_bytes must be a finite"),
    ("[intake]\nraw_retention_days = -5\n", "[intake] raw_retention_days must be"),
    ("[log]\ntarget = 'bogus'\n", "[log] target must be one of 'syslog', 'file', 'stderr', 'none'"),
    ("[log]\nformat = 'xml'\n", "[log] format must be one of 'logfmt', 'json'"),
    ("[database]\npg_mode = 'both'\n", "[database] pg_mode must be one of 'spool', 'direct'"),
    ("[database]\nurl = 'mysql://u:pw@h/db'\n", "[database] url must be sqlite"),
    ("[database]\nurl = 'sqlite:///:memory:'\n", "[database] url must name a SQLite file"),
    ("[verp]\nmax_age_days = 5000\n", "[verp] max_age_days must be"),
    ("[verp]\nverp_delimiters = '+'\n", "[verp] verp_delimiters must be exactly two"),
    ("[intake]\nrelay = \"a\\nb\"\n", "[intake] relay must be printable"),
    ("[daemon]\nlmtp_listen = 'tcp:1'\n", "[daemon] lmtp_listen must be empty"),
    ("[daemon]\nlmtp_time_limit = inf\n", "[daemon] lmtp_time_limit must be a finite"),
]


@pytest.mark.parametrize("text,message", MEANINGLESS, ids=range(len(MEANINGLESS)))
def test_config_check_refuses_values_that_mean_something_else(store, text, message):
    store.config.write_text(text)
    proc = store.bounces("config", "check")
    err = proc.stderr.decode()
    assert proc.returncode == 78, err
    assert message in err, err
    assert "pw" not in err  # a refused URL is not echoed (it may hold a password)
    # The pipe reads the same settings: it defers (75) with the same reason, never runs
    # with the meaningless value.
    res = store.handler("--", "alice=example.net", input=b"Subject: x\n\nx\n")
    assert res.returncode == 75 and message.encode() in res.stdout, res.stdout


def test_every_number_and_enumeration_has_a_meaning_check():
    for section, keys in settings.SCHEMA.items():
        for key, (typ, default, _why) in keys.items():
            if typ in (int, float):
                assert (section, key) in settings.CHECKS, f"[{section}] {key} is unchecked"
            check = settings.CHECKS.get((section, key))
            if check is not None:
                assert check(default) is None, f"[{section}] {key}: default {default!r} refused"
    for section, key in (("database", "pg_mode"), ("log", "target"), ("log", "format")):
        assert settings.CHECKS[(section, key)]("bogus")
