"""Can the pipe user reach, read, write, execute a path -- and the command that lets it.

By mode bits and ownership (what ``User.may`` reads), as the kernel decides for an
unprivileged process without ACLs; plus ``runs_as``, which really runs the handler as the
user, for what mode bits cannot see.  Fixes change as little as possible: a directory
only needs search (x) permission, granted to the group when the user is in it; a file the
user must read becomes ``root:PIPEGROUP 0640``, the shape deploy/install.sh gives the
config, the key file and the caches.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess


class User:
    """A local account, for "can this user read/write/execute that" by mode bits."""

    def __init__(self, name: str) -> None:
        import grp
        import pwd

        pw = pwd.getpwnam(name)  # KeyError: no such user
        self.name = name
        self.uid = pw.pw_uid
        self.gids = set(os.getgrouplist(name, pw.pw_gid))
        self.group = grp.getgrgid(pw.pw_gid).gr_name

    def may(self, path: str, bit: str) -> bool:
        """Whether the user has `bit` (r, w or x) on `path` itself."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if self.uid == 0:
            return bit != "x" or bool(st.st_mode & 0o111) or os.path.isdir(path)
        shift = {"r": 2, "w": 1, "x": 0}[bit]
        if st.st_uid == self.uid:
            return bool(st.st_mode >> (6 + shift) & 1)
        if st.st_gid in self.gids:
            return bool(st.st_mode >> (3 + shift) & 1)
        return bool(st.st_mode >> shift & 1)

    def unsearchable(self, path: str) -> list[str]:
        """Every directory above `path` the user cannot search (x), top down."""
        parts = os.path.abspath(path).split("/")[1:-1]
        current = ""
        out = []
        for part in parts:
            current += "/" + part
            if not self.may(current, "x"):
                out.append(current)
        return out

    def reach(self, path: str) -> str | None:
        """None when every directory above `path` is searchable, else the first that is not."""
        blocked = self.unsearchable(path)
        return blocked[0] if blocked else None

    def blocked(self, path: str, bits: str) -> str | None:
        """Why the user cannot use `path` with `bits` ("rx", "w"...), or None when it can."""
        where = self.reach(path)
        if where:
            return f"directory {where} is not searchable by {self.name}"
        if not os.path.exists(path):
            return f"{path} does not exist"
        for bit in bits:
            if not self.may(path, bit):
                word = {"r": "read", "w": "write", "x": "execute"}[bit]
                return f"{self.name} cannot {word} {path} ({mode(path)})"
        return None

    # -- fixes --------------------------------------------------------------------------

    def search_commands(self, path: str) -> list[str]:
        """Commands that make every directory above `path` searchable by the user."""
        out = []
        for d in self.unsearchable(path):
            who = "g" if os.stat(d).st_gid in self.gids else "o"
            out.append(f"chmod {who}+x {shlex.quote(d)}")
        return out

    def read_commands(self, path: str) -> list[str]:
        """Commands that let the user read the secret file `path` (and reach it)."""
        cmds = self.search_commands(path)
        if not self.may(path, "r"):
            q = shlex.quote(path)
            cmds.append(f"chgrp {shlex.quote(self.group)} {q} && chmod 0640 {q}")
        return cmds


def mode(path: str) -> str:
    """``-rw-r----- root:nogroup`` of a path."""
    import grp
    import pwd
    import stat

    st = os.stat(path)
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{stat.filemode(st.st_mode)} {owner}:{group}"


def executable_problem(path: str, user: User) -> str | None:
    """Why `user` cannot execute `path` (following symlinks and a #! interpreter), or None."""
    if not os.path.isabs(path):
        return f"{path} is not an absolute path (pipe(8) runs with PATH=/usr/bin:/bin)"
    seen = set()
    todo = [path]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        why = user.blocked(p, "x")
        if why:
            return why
        real = os.path.realpath(p)
        if real != p:
            todo.append(real)
            continue
        try:
            with open(p, "rb") as fp:
                head = fp.read(256)
        except OSError:
            continue
        if head.startswith(b"#!"):
            # A script: the kernel runs its interpreter as the same user, and the
            # interpreter must read the script.
            why = user.blocked(p, "r")
            if why:
                return why
            interp = head[2:].split(b"\n", 1)[0].strip().split()[0].decode("utf-8", "replace")
            todo.append(interp)
    return None


def runs_as(user: str, argv0: str) -> str | None:
    """As root: actually run `argv0 --version` as `user` (what pipe(8) will do). None = ok."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    try:
        proc = subprocess.run(
            ["runuser", "-u", user, "--", argv0, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"running {argv0} --version as {user} failed: {e}"
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        return f"{argv0} --version as {user} exited {proc.returncode}: {out[-1] if out else ''}"
    return None
