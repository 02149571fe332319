"""Domain exceptions, converted once at the edges (the `bounces` CLI, the pipe's exit table)."""

from __future__ import annotations

# sysexits.h values the project uses.
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78


class BounceHandlerError(Exception):
    """An error the user can act on: printed as one line by the CLI, with an exit code."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class StoreUnavailable(BounceHandlerError):
    """The store cannot take the write now (missing, locked, read-only, full, old schema).

    Never the message's fault: the pipe maps it to exit 75 so Postfix keeps the message and
    retries; the text ends up in `mailq`, so it names the file or server and why.
    """

    exit_code = EX_TEMPFAIL


class UnstorableMessage(BounceHandlerError):
    """The store refuses this message's rows for what they hold, not for its own state.

    A data error (a value or constraint the store rejects) happens again on every retry,
    so it must never be reported as ``StoreUnavailable``: the writers set such a message
    aside as quarantined (store/rows.py ``set_aside``); this is raised only when even that
    was refused, and the spool drain then moves the file to ``bad/`` with why.
    """

    exit_code = EX_DATAERR
