"""The start-up caches the pipe reads beside its configuration, written by the CLI.

Not a verb: `bounces config check` and `bounces db upgrade` call ``write`` after they have
validated the file, so that every bounce-handler process finds, next to config.toml,

* ``.config.toml.cache``: the parsed settings (settings.write_cache; tomllib costs the
  pipe ~8 ms a bounce), and
* ``.config.toml.patterns``: the parser's regular expressions precompiled for ``_sre``
  (parse/precompile.py builds it, parse/lazyre.py uses it; ~7 ms a vendor-format bounce).

Both are written here and not by ``settings``: settings is a leaf every room imports,
and building the table imports the whole parser (issue 15: the import circle
settings -> parse.precompile -> parse.lazyre -> settings).  Both take the config file's
mode and owner (the cache holds the same secrets).
"""

from __future__ import annotations

import os


def write(settings) -> str | None:
    """Write both caches beside ``settings.path``; return the settings cache's path or None."""
    from bounce_handler import settings as settings_mod

    cache = settings_mod.write_cache(settings)
    if cache is not None:
        write_patterns(settings)
    return cache


def write_patterns(settings) -> str | None:
    """Write the precompiled-pattern table beside ``settings.path``; return its path or None.

    None when there is no config file or the table cannot be built or written (re
    internals that differ, a full disk): the pipe then compiles its patterns as usual.
    """
    if not settings.path:
        return None
    from bounce_handler import settings as settings_mod
    from bounce_handler.parse import lazyre, precompile

    path = settings_mod.patterns_path(settings.path)
    try:
        st = os.stat(settings.path)
        settings_mod.write_stamped(path, lazyre.header(), precompile.build(), st)
    except Exception:  # noqa: BLE001 - no table is a slower pipe, never a wrong one
        return None
    return path
