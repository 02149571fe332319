"""What doctor reports: findings (each with its exact fix), the intakes it found, the verdict.

A finding's ``commands`` are shell commands an administrator runs as root, in order, as
printed; ``fix`` is prose for what cannot be a command (an edit of the TOML file, a
decision).  ``reload`` marks a fix that changes main.cf, master.cf or a lookup table:
Postfix reads those at start and on ``postfix reload``, which the report prints once at
the end.  tests/e2e/test_doctor_paths.py runs the printed commands and expects doctor to
pass afterwards.
"""

from __future__ import annotations

OK, WARNING, PROBLEM = "ok", "warning", "PROBLEM"

# JSON spells the status in lower case; the text report keeps "PROBLEM" loud.
JSON_STATUS = {OK: "ok", WARNING: "warning", PROBLEM: "problem"}


class Finding:
    """One check: status ok, warning or PROBLEM, what was seen, and the fix.

    ``check`` is a stable dotted name for monitoring (``routing.transport``,
    ``access.key-file``...); ``subject`` names what it is about (a service, a config
    file, a bounce address).
    """

    __slots__ = ("status", "what", "fix", "commands", "reload", "check", "subject")

    def __init__(
        self,
        status: str,
        what: str,
        fix: str | None = None,
        *,
        commands: list[str] | None = None,
        reload: bool = False,
        check: str = "",
        subject: str | None = None,
    ) -> None:
        self.status = status
        self.what = what
        self.fix = fix
        self.commands = list(commands or [])
        self.reload = reload
        self.check = check
        self.subject = subject

    def __repr__(self) -> str:
        return f"Finding({self.status!r}, {self.check!r}, {self.what!r})"

    def as_json(self) -> dict[str, object]:
        """The stable JSON shape (documented in cli/doctor.py)."""
        return {
            "check": self.check,
            "status": JSON_STATUS[self.status],
            "subject": self.subject,
            "what": self.what,
            "fix": self.fix,
            "commands": self.commands,
            "reload": self.reload,
        }


class Report:
    """Every finding in order, the intakes found, and the Postfix instance looked at."""

    def __init__(self, postfix_config: str | None, reload_command: str) -> None:
        self.postfix_config = postfix_config
        self.reload_command = reload_command
        self.findings: list[Finding] = []
        self.intakes: list[dict[str, object]] = []
        # None: unknown; False: `postfix reload` would fail, the changes apply at start.
        self.postfix_running: bool | None = None

    def add(self, findings) -> None:
        """Append findings (an iterable)."""
        self.findings.extend(findings)

    @property
    def problems(self) -> int:
        """How many PROBLEM findings."""
        return sum(1 for f in self.findings if f.status == PROBLEM)

    @property
    def warnings(self) -> int:
        """How many warnings."""
        return sum(1 for f in self.findings if f.status == WARNING)

    @property
    def needs_reload(self) -> bool:
        """Whether a printed fix changes what Postfix reads at start and reload."""
        return any(f.reload for f in self.findings if f.status != OK)

    @property
    def exit_status(self) -> int:
        """Doctor's exit status (public interface): 1 with a problem, else 0."""
        return 1 if self.problems else 0

    def where(self) -> str:
        """The instance, as the last line names it."""
        return self.postfix_config or "the default Postfix instance"

    def as_json(self) -> dict[str, object]:
        """The whole report for `bounces doctor --format json`."""
        status = "problem" if self.problems else "warning" if self.warnings else "ok"
        return {
            "format": 1,
            "postfix_config": self.postfix_config,
            "status": status,
            "exit": self.exit_status,
            "problems": self.problems,
            "warnings": self.warnings,
            "reload": self.reload_command if self.needs_reload else None,
            "postfix_running": self.postfix_running,
            "intakes": self.intakes,
            "findings": [f.as_json() for f in self.findings],
        }

    def text(self) -> str:
        """The human report: one line a finding, its fix under it, the verdict last."""
        out = []
        for f in self.findings:
            out.append(f"{f.status:<8} {f.what}")
            if f.status == OK:
                continue
            # The sentence first (it says when or why), then the commands, one a line.
            lines = ([f.fix] if f.fix else []) + f.commands
            for i, line in enumerate(lines):
                out.append(f"{'':<8} {'fix: ' if i == 0 else '     '}{line}")
        if self.needs_reload:
            if self.postfix_running is False:
                out.append("then:    nothing: Postfix is stopped, it reads them when started")
            else:
                out.append(f"then:    {self.reload_command}")
        if self.problems:
            n = self.problems
            out.append(f"{n} problem{'s' if n > 1 else ''} found in {self.where()}.")
        else:
            out.append(f"no problems found in {self.where()}.")
        return "\n".join(out)
