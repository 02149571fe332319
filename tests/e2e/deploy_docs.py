"""What the deployment documents say about an installed system, checked against one.

``permission_rows`` reads the table in deploy/spool-and-lmtp.md ("Permissions (least
privilege)"); ``check_permissions`` compares it with what deploy/install.sh left behind
under a test prefix; ``documentation_paths`` lists the file:// pages the systemd units
name, which install.sh must have installed.  tests/e2e/test_deploy_guide.py calls them
right after running install.sh.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat

from tests.conftest import ROOT

DOC = ROOT / "deploy" / "spool-and-lmtp.md"
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def permission_rows() -> list[tuple[str, str, str]]:
    """(path, owner:group, mode) for every row of the permission table, braces expanded."""
    text = DOC.read_text()
    section = text[text.index("## Permissions (least privilege)"):]
    section = section[: section.index("\n## ", 5)]
    rows = []
    for line in section.splitlines():
        m = re.match(r"^\| `([^`]+)` \| ([\w:-]+) \| (0[0-7]{3}) \|", line)
        if not m:
            continue
        path, owner, mode = m.groups()
        brace = re.search(r"\{([^}]*)\}", path)
        if brace:
            for part in brace.group(1).split(","):
                rows.append((path[: brace.start()] + part + path[brace.end():], owner, mode))
        else:
            rows.append((path, owner, mode))
    return rows


def check_permissions(layout: dict[str, str], user: str, group: str) -> list[str]:
    """Each row's difference from the installed files (empty: the table is right).

    `layout` maps the documented directories (/opt/bounce-handler, ...) to where the test
    installed them.
    """
    problems = []
    rows = permission_rows()
    assert len(rows) >= 10, rows  # the table was found and read
    for path, owner, mode in rows:
        real = path
        for doc_dir, test_dir in layout.items():
            if real.startswith(doc_dir):
                real = test_dir + real[len(doc_dir):]
        want_user, _, want_group = owner.replace("PIPEUSER", user).replace(
            "PIPEGROUP", group).partition(":")
        try:
            st = os.stat(real)
        except FileNotFoundError:
            problems.append(f"{path}: not there after install.sh")
            continue
        got = (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
               f"{stat.S_IMODE(st.st_mode):04o}")
        if got != (want_user, want_group, mode):
            problems.append(f"{path}: the table says {want_user}:{want_group} {mode}, "
                            f"install.sh left {got[0]}:{got[1]} {got[2]}")
    return problems


def documentation_paths() -> list[str]:
    """The file:// pages the systemd units' Documentation= lines name."""
    out = []
    for unit in UNITS:
        for line in unit.read_text().splitlines():
            if line.startswith("Documentation="):
                out += [w[len("file://"):] for w in line.partition("=")[2].split()
                        if w.startswith("file://")]
    return out
