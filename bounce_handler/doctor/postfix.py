"""Reading one Postfix instance: main.cf (postconf), master.cf (postconf -M), lookup tables.

Everything goes through Postfix's own tools (``postconf``, ``postmap -q``, ``postqueue``)
so doctor sees what Postfix sees: ``$parameter`` expansion, defaults of the installed
version, every table type.  The fixes doctor prints are built here too, as commands
against the same instance (``-c DIR`` when one was named).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from bounce_handler.errors import EX_UNAVAILABLE, BounceHandlerError

# Table types whose source is a text file doctor can edit with a command: the indexed
# ones need `postmap` after the edit, texthash is read as is (both at Postfix's start or
# reload).  Others (regexp, pcre, cidr, ldap, pgsql...) get prose.
INDEXED = ("hash", "btree", "lmdb", "cdb", "dbm", "sdbm")
PLAIN = ("texthash",)


class Service:
    """One master.cf entry as `postconf -M` prints it (one logical line)."""

    __slots__ = ("fields", "name", "type", "unpriv", "chroot", "maxproc", "command", "args")

    def __init__(self, fields: list[str]) -> None:
        self.fields = list(fields)
        self.name, self.type = fields[0], fields[1]
        self.unpriv, self.chroot, self.maxproc = fields[3], fields[4], fields[6]
        self.command = fields[7]
        self.args = fields[8:]

    def pipe_attrs(self) -> tuple[dict[str, str], list[str], dict[str, str]]:
        """(attributes like flags/user, argv list, -o overrides) of a pipe service."""
        attrs: dict[str, str] = {}
        overrides: dict[str, str] = {}
        argv: list[str] = []
        i = 0
        while i < len(self.args):
            a = self.args[i]
            if a == "-o" and i + 1 < len(self.args):
                k, _, v = self.args[i + 1].partition("=")
                overrides[k] = v
                i += 2
                continue
            if a.startswith("argv="):
                argv = [a[5:], *self.args[i + 1 :]]
                break
            k, eq, v = a.partition("=")
            if eq:
                attrs[k] = v
            i += 1
        return attrs, argv, overrides

    def with_argv(self, argv: list[str]) -> str:
        """The entry as one master.cf line, with `argv` replacing the pipe's argv."""
        head = []
        for a in self.args:
            if a.startswith("argv="):
                break
            head.append(a)
        return " ".join([*self.fields[:8], *head, "argv=" + argv[0], *argv[1:]])

    def chrooted(self) -> bool:
        """Whether the service runs chrooted (``-``: n since Postfix 3.0's defaults)."""
        return self.chroot == "y"


class Postconf:
    """Runs postconf(1) and its siblings against one instance."""

    def __init__(self, config_dir: str | None, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("postconf") or "/usr/sbin/postconf"
        if not os.path.exists(self.binary):
            raise BounceHandlerError(
                "postconf not found: is Postfix installed? (doctor reads its configuration)",
                EX_UNAVAILABLE,
            )
        self.config_dir = config_dir
        self.sbin = os.path.dirname(self.binary)
        self._params: dict[str, str] = {}
        self._services: list[Service] | None = None

    # -- commands, for running and for printing as fixes --------------------------------

    def _c(self) -> list[str]:
        return ["-c", self.config_dir] if self.config_dir else []

    def tool(self, name: str) -> str:
        """Path of a Postfix tool installed beside postconf (postmap, postqueue...)."""
        path = os.path.join(self.sbin, name)
        return path if os.path.exists(path) else name

    def cmd(self, tool: str, *args: str) -> str:
        """A fix command line for this instance: ``postconf -c DIR -e '...'``.

        Named by the bare tool name, as an administrator types it (root's PATH has
        /usr/sbin); ``-c DIR`` only when doctor was pointed at a non-default instance.
        """
        return " ".join(shlex.quote(a) for a in [tool, *self._c(), *args])

    def reload_command(self) -> str:
        """`postfix [-c DIR] reload`."""
        return self.cmd("postfix", "reload")

    def run(self, *args: str) -> str:
        """Run postconf [-c DIR] ARGS; return its stdout (BounceHandlerError on failure)."""
        argv = [self.binary, *self._c(), *args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise BounceHandlerError(
                f"{' '.join(argv)} failed: {proc.stderr.strip()}", EX_UNAVAILABLE
            )
        return proc.stdout

    def run_tool(self, tool: str, *args: str, timeout: float = 30):
        """Run a sibling tool with -c DIR; the CompletedProcess, or None if it cannot run."""
        try:
            return subprocess.run(
                [self.tool(tool), *self._c(), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None

    # -- main.cf ------------------------------------------------------------------------

    def param(self, name: str) -> str:
        """A main.cf parameter, $expanded (postconf -xh)."""
        if not self._params:
            # Every parameter in one run (~40 ms) rather than one postconf per name.
            for line in self.run("-x").splitlines():
                key, sep, value = line.partition(" = ")
                if sep or line.endswith(" ="):
                    self._params[key.rstrip(" =")] = value.strip()
        if name not in self._params:
            self._params[name] = self.run("-xh", name).strip()
        return self._params[name]

    def raw_param(self, name: str) -> str | None:
        """The value as written in main.cf (postconf -nh), or None when it is a default."""
        out = self.run("-nh", name).strip()
        return out or None

    def list_param(self, name: str) -> list[str]:
        """A list parameter split as Postfix splits it (commas and white space)."""
        return [x for x in self.param(name).replace(",", " ").split() if x]

    def set_param_command(self, name: str, value: str) -> str:
        """``postconf -e 'name = value'``."""
        return self.cmd("postconf", "-e", f"{name} = {value}")

    # -- master.cf ----------------------------------------------------------------------

    def services(self) -> list[Service]:
        """Every master.cf service."""
        if self._services is None:
            out = []
            for line in self.run("-M").splitlines():
                fields = line.split()
                if len(fields) >= 8:
                    out.append(Service(fields))
            self._services = out
        return self._services

    def service(self, name: str, type_: str = "unix") -> Service | None:
        """The master.cf service `name`/`type_`, if any."""
        return next((s for s in self.services() if (s.name, s.type) == (name, type_)), None)

    def set_service_command(self, service: Service, line: str) -> str:
        """``postconf -M name/type='whole entry'``: replaces one master.cf entry."""
        return self.cmd("postconf", "-M", f"{service.name}/{service.type}={line}")

    # -- lookup tables ------------------------------------------------------------------

    def lookup(self, table: str, key: str) -> str | None:
        """``postmap -q KEY TABLE``: the value, or None (not found, or not readable)."""
        if table.startswith("proxy:"):
            table = table[len("proxy:") :]  # the same table, read directly
        proc = self.run_tool("postmap", "-q", key, table)
        if proc is not None and proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        return None

    def lookup_maps(self, param: str, keys: list[str]) -> tuple[str, str, str] | None:
        """The first (table, key, value) found for `keys`, in the order Postfix tries."""
        for table in self.list_param(param):
            for key in keys:
                found = self.lookup(table, key)
                if found is not None:
                    return table, key, found
        return None

    def table_source(self, table: str) -> tuple[str, str] | None:
        """(type, file) of a table whose source doctor can edit with a command, else None."""
        kind, sep, path = table.partition(":")
        if sep and (kind in INDEXED or kind in PLAIN) and path.startswith("/"):
            return kind, path
        return None

    def set_entry_commands(self, table: str, key: str, value: str | None) -> list[str] | None:
        """Commands that make `key` map to `value` in `table` (None: drop the key).

        Existing lines for the key are deleted first: with a duplicate key postmap keeps
        the first and warns, so appending alone would change nothing.  None when the
        table is not a file doctor can edit (its fix is then prose).
        """
        source = self.table_source(table)
        if source is None:
            return None
        kind, path = source
        # A BRE matching the key at the start of a line, any case (Postfix folds keys of
        # indexed tables to lower case; texthash too).
        bre = "".join("\\" + c if c in ".[]*^$\\/" else c for c in key)
        cmds = [f"touch {shlex.quote(path)}"]
        cmds.append(f"sed -i {shlex.quote(f'/^{bre}[[:space:]]/Id')} {shlex.quote(path)}")
        if value is not None:
            cmds.append(
                f"printf '%s\\t%s\\n' {shlex.quote(key)} {shlex.quote(value)} "
                f">> {shlex.quote(path)}"
            )
        if kind in INDEXED:
            cmds.append(self.cmd("postmap", table))
        return cmds

    # -- domain lists (mydestination, relay_domains, virtual_*_domains) ------------------

    def domain_listed(self, param: str, domain: str) -> str | None:
        """The entry of list parameter `param` that matches `domain`, or None.

        Postfix's domain-list rules: a literal name, ``.parent`` for its subdomains (and
        a bare parent too when `param` is in parent_domain_matches_subdomains), a
        ``/file`` of such entries, a ``type:table`` looked up by domain, ``!`` negates.
        """
        domain = domain.lower().rstrip(".")
        parents = param in self.list_param("parent_domain_matches_subdomains")
        return _match_list(self, self.list_param(param), domain, parents, depth=0)


def _match_list(pc: Postconf, entries: list[str], domain: str, parents: bool, depth: int):
    for entry in entries:
        negated = entry.startswith("!")
        name = entry.lstrip("!")
        hit = False
        if name.startswith("/") and depth < 3:
            try:
                with open(name, errors="replace") as fp:
                    words = [w for ln in fp for w in ln.split("#", 1)[0].replace(",", " ").split()]
            except OSError:
                words = []
            hit = _match_list(pc, words, domain, parents, depth + 1) is not None
        elif ":" in name:
            keys = [domain]
            labels = domain.split(".")
            for i in range(1, len(labels)):
                parent = ".".join(labels[i:])
                keys += [parent] if parents else []
                keys.append("." + parent)
            hit = any(pc.lookup(name, k) is not None for k in keys)
        else:
            name = name.lower().rstrip(".")
            hit = (
                name == domain
                or (name.startswith(".") and domain.endswith(name))
                or (parents and domain.endswith("." + name))
            )
        if hit:
            return None if negated else entry
    return None


def time_seconds(value: str) -> float | None:
    """A Postfix time value (default unit: seconds; s m h d w) in seconds."""
    value = value.strip()
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    mult = units.get(value[-1].lower())
    number = value[:-1] if mult else value
    try:
        return float(number) * (mult or 1)
    except ValueError:
        return None
