"""The Postfix advice a throttled-destination flag carries, ready to paste.

A provider that answers "421 4.7.0 [TSS04] ... temporarily deferred due to unexpected
volume" (Yahoo), "421 4.7.28 ... unusual rate of unsolicited mail" (Gmail) or "451 4.7.500
Server busy ... (S3150)" (Microsoft) wants fewer parallel connections and a pause between
deliveries.  Postfix does that per transport (master.cf service) and per destination: a
transport of its own for the provider's domains (transport(5)), with
``<transport>_destination_concurrency_limit`` and ``<transport>_destination_rate_delay``
(postconf(5); both exist since Postfix 2.5).  Imported lazily by judge/core.py, only when
such a flag is raised, which happens inside the pipe: so no ``re`` here (with enum,
functools and collections it would cost the pipe ~4 ms, see tests/test_pipe_imports.py).
"""

from __future__ import annotations

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def transport_name(subject: str, prefix: str) -> str:
    """A master.cf service name for the subject (letters, digits, _).

    Every run of other characters becomes one '_', and '_' is stripped from both ends
    (yahoo.co.uk -> slow_yahoo_co_uk).
    """
    out = []
    run = False
    for c in subject.lower():
        if c in _NAME_CHARS:
            out.append(c)
            run = False
        elif not run:
            out.append("_")
            run = True
    return prefix + "".join(out).strip("_")


def postfix_advice(subject: str, domains, options) -> str:
    """The master.cf, main.cf and transport map lines that slow deliveries to `domains`."""
    name = transport_name(subject, options.transport_prefix)
    width = max(len(d) for d in domains) + 2
    lines = [
        f"# {subject} is throttling this relay: give it a slower transport of its own.",
        "# 1. master.cf (same columns as your smtp line):",
        f"{name} unix  -       -       n       -       -       smtp",
        f"    -o syslog_name=postfix/{name}",
        "# 2. main.cf (add the map to transport_maps if you already have one):",
        "transport_maps = hash:/etc/postfix/transport",
        f"{name}_destination_concurrency_limit = {options.concurrency_limit}",
        f"{name}_destination_rate_delay = {options.rate_delay}",
        "#    (a non-zero rate delay also means one delivery at a time per destination)",
        "# 3. /etc/postfix/transport, then: postmap /etc/postfix/transport && postfix reload",
    ]
    for d in domains:
        lines.append(f"{d.ljust(width)}{name}:")
    return "\n".join(lines) + "\n"
