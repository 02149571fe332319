"""Fixtures for the end-to-end tests: relays wired to SQLite or to a private PostgreSQL."""

from __future__ import annotations

import tempfile

import pytest

from tests.support import postfix as pf


@pytest.fixture
def make_relay(pipe_bin, _migrated_template):
    """Factory: make_relay(name=..., url=None|PG URL, extra_main=..., config_extra=...).

    Each relay is a private Postfix on its own port with the real bounce-handler as its
    pipe; all are stopped and removed at the end of the test.
    """
    made = []

    def factory(**kw):
        kw.setdefault("sqlite_template", str(_migrated_template))
        relay = pf.Relay(tempfile.mkdtemp(prefix="bh-e2e-", dir="/tmp"), pipe_bin, **kw)
        made.append(relay)
        return relay.start()

    yield factory
    for relay in made:
        relay.destroy()


@pytest.fixture
def pg_db(pg_server, request):
    """A fresh, migrated database on the private PostgreSQL; returns its URL."""
    from bounce_handler import settings
    from bounce_handler.store import engine

    if not pg_server.is_running():
        pg_server.start()
    name = "e2e_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:40]
    url = pg_server.create_database(name)
    engine.upgrade(settings.from_dict({"database": {"url": url}}))
    return url
