"""Skip locally, fail in CI: the one switch for tests that need a real service.

A test that needs Postfix or PostgreSQL calls ``require(what, reason)`` when the service is
missing.  On a developer's machine that is a skip (the service may simply not be
installed); with ``BOUNCE_HANDLER_REQUIRE_SERVICES=1`` (``.ci/run`` sets it) it is a
failure, so a CI run can never go green by silently skipping the end-to-end tests.
"""

from __future__ import annotations

import os

import pytest

ENV_VAR = "BOUNCE_HANDLER_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when missing services must fail the run instead of skipping."""
    return os.environ.get(ENV_VAR, "") not in ("", "0", "false", "no")


def require(what: str, reason: str) -> None:
    """Give up on the current test because `what` is unavailable (`reason` says why).

    Fails under ``BOUNCE_HANDLER_REQUIRE_SERVICES=1``, skips otherwise.  Never returns.
    """
    message = f"{what} unavailable: {reason}"
    if services_required():
        pytest.fail(f"{message} ({ENV_VAR}=1, so this is a failure, not a skip)")
    pytest.skip(message)
