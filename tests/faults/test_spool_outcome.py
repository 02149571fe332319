"""Issue 16: in spool mode the pipe says "spooled", never "recorded" (the row is not in the
database until the daemon drains it), and a redelivery says "already spooled" rather than
"already recorded as message None".  The database row still says recorded once drained.
"""

from __future__ import annotations

from bounce_handler import settings as settings_mod
from bounce_handler.daemon.drain import DrainService
from bounce_handler.store import spool
from bounce_handler.store.lean import SqliteWriter
from tests.faults.helpers import assert_clean, run_handler, spool_config, variant


def test_the_pipe_says_spooled_until_the_drain_records_it(tmp_path, store):
    cfg = spool_config(tmp_path, "postgresql+psycopg://bounce:pw@127.0.0.1:1/none")
    spool.make_dirs(str(tmp_path / "spool"))
    ext, raw = variant(0, bounces_only=True)
    res, _, _ = run_handler(cfg, ext, raw)
    assert_clean(res)
    assert res.returncode == 0
    assert res.stdout.startswith(b"spooled: 1 bounce: alice0@example.net 5.1.1"), res.stdout
    assert b"outcome=spooled exit=0" in res.stderr  # the structured line says the same
    res, _, _ = run_handler(cfg, ext, raw)
    assert res.returncode == 0
    assert res.stdout == b"duplicate: already spooled\n"
    # What is not a bounce (an auto-reply, a message not understood) is spooled too: its
    # line keeps its outcome and says where it is.
    for ext, raw in [variant(i) for i in range(1, 12)]:
        res, _, _ = run_handler(cfg, ext, raw)
        assert res.returncode == 0
        first = res.stdout.split(b":", 1)[0]
        assert first in (b"spooled", b"ignored", b"quarantined"), res.stdout
        if first != b"spooled":
            assert res.stdout.rstrip().endswith(b"(spooled)"), res.stdout
    settings = settings_mod.load(str(cfg))
    stats = DrainService(settings, writer_factory=lambda s: SqliteWriter(str(store.db), 2.0)
                         ).drain_all()
    assert (stats.drained, stats.bad, stats.error) == (12, 0, None)
    # In the database the bounce is what it always was: recorded.
    assert store.query("SELECT disposition FROM messages WHERE extension = ?",
                       ("alice0=example.net",)) == [("recorded",)]
