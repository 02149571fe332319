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
