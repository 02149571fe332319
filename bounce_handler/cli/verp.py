"""Make VERP keys, and encode or decode signed bounce addresses.

`keygen` creates the key file named by [verp] key_file (mode 0640; give it the pipe
user's group with --group) and refuses to overwrite one; `keygen --rotate` prepends a
new signing key and keeps the old ones, so mail in flight still verifies.  Remove a
retired key once [verp] max_age_days have passed since the rotation.

`encode` prints the signed return-path address to send with (the recipient is dropped,
with a warning, when both do not fit RFC 5321's 64-octet local part; --strict refuses
instead); given several recipients, one address per line, in their order.  `decode`
takes a bounce address (or just the part after "bounces+") and exits 0 when its token
verifies, 1 when it does not (reason: unsigned, bad-tag, expired,
unknown-key, malformed, no-token).

Examples:
    bounces verp keygen --group nogroup
    bounces verp keygen --rotate
    bounces verp encode alice@example.com --sender newsletter
    bounces verp encode alice@example.com bob@example.org --sender news@corp.example
    bounces verp encode --sender news@corp.example
    bounces verp decode --format json \
        'bounces+.a2kq4d7fxnewsletter==alice=example.com@relay.example'

"""

from __future__ import annotations

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_CONFIG, BounceHandlerError

HEADER = (
    "# bounce-handler VERP keys: KEYID HEXSECRET, the first key signs, all verify.\n"
    "# Remove a retired key once [verp] max_age_days have passed since it stopped signing.\n"
)


def register(sub) -> None:
    """Add `bounces verp`."""
    p = verb_parser(sub, "verp", __doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    kg = actions.add_parser("keygen", help="create the key file (or --rotate it)")
    kg.add_argument("--rotate", action="store_true", help="prepend a new signing key")
    kg.add_argument("--group", help="group owning the file (the pipe user's group)")
    kg.add_argument("--file", help="key file (default: [verp] key_file)")
    enc = actions.add_parser("encode", help="print a signed return-path address")
    enc.add_argument("recipients", nargs="*", metavar="RECIPIENT",
                     help="original recipient(s) (none: a per-sender address)")
    enc.add_argument("--sender", required=True, help="local sender identity")
    enc.add_argument("--strict", action="store_true", help="fail rather than drop recipient")
    dec = actions.add_parser("decode", help="decode and verify a bounce address")
    dec.add_argument("address", help="bounces+TOKEN@domain, or TOKEN alone")
    dec.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces verp ACTION`."""
    if args.action == "keygen":
        return keygen(args.file or settings.verp.key_file, args.rotate, args.group)
    if args.action == "encode":
        return _encode(args, settings)
    return _decode(args, settings)


def _next_id(used: list[str]) -> str:
    from bounce_handler.verp import KEY_ID_CHARS

    start = KEY_ID_CHARS.index(used[0]) + 1 if used else 0
    for i in range(len(KEY_ID_CHARS)):
        kid = KEY_ID_CHARS[(start + i) % len(KEY_ID_CHARS)]
        if kid not in used:
            return kid
    raise BounceHandlerError(
        f"all {len(KEY_ID_CHARS)} key ids are in use: remove retired keys first", EX_CONFIG
    )


def keygen(path: str, rotate: bool, group: str | None) -> int:
    """Create (or rotate) the key file at `path`; return the exit code."""
    import datetime
    import os

    from bounce_handler.verp import load_keys

    gid = -1
    if group:
        import grp

        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise BounceHandlerError(f"no such group {group!r}", EX_CONFIG) from None
    exists = os.path.lexists(path)
    if exists and not rotate:
        raise BounceHandlerError(
            f"{path} exists: not overwriting keys that sign mail in flight "
            "(use --rotate to add a new signing key)",
            EX_CONFIG,
        )
    old_text, used, mode = "", [], 0o640
    if exists:
        ring = load_keys(path)  # a broken file is reported, never rotated over
        used = list(ring.ids)
        st = os.stat(path)
        mode = st.st_mode & 0o777
        gid = gid if gid != -1 else st.st_gid
        with open(path, encoding="ascii") as fp:
            old_text = fp.read()
        if old_text.startswith(HEADER):
            old_text = old_text[len(HEADER) :]
    kid = _next_id(used)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"{HEADER}# {kid} created {stamp}\n{kid} {os.urandom(32).hex()}\n{old_text}"
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        # Created 0640 from the start (O_EXCL, explicit mode, then fchmod past the umask):
        # the secret is never readable by others, not even for a moment.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, mode)
            if gid != -1:
                os.fchown(fd, -1, gid)
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if exists:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if someone created `path` meanwhile: never clobber
            os.unlink(tmp)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise BounceHandlerError(f"{path}: {e.strerror or e}", EX_CONFIG) from None
    verb = "rotated" if exists else "created"
    print(f"{path}: {verb}; key {kid!r} signs" + (f", {len(used)} older kept" if used else ""))
    return 0


def _encode(args, settings) -> int:
    import sys
    import time

    from bounce_handler import verp

    now = time.time()
    for recipient in args.recipients or [None]:
        address = verp.encode(recipient, args.sender, settings, now, fallback=not args.strict)
        if recipient:
            back = verp.decode(verp.split_address(address, settings), settings, now)
            if back.recipient is None:
                print(
                    f"bounces verp: warning: sender and recipient {recipient} do not fit the "
                    "64-octet local part; this address carries the sender only",
                    file=sys.stderr,
                )
        print(address)
    return 0


def _decode(args, settings) -> int:
    import time

    from bounce_handler import verp

    given = args.address
    extension = verp.split_address(given, settings) if "@" in given else given
    result = verp.decode(extension, settings, time.time())
    from bounce_handler.reports.render import json_text, visible

    if args.format == "json":
        out = {k: getattr(result, k) for k in ("recipient", "sender", "verified", "reason")}
        out["token"] = result.token
        print(json_text(out, indent=None))
    else:
        # The address may come from a bounce: its parts are shown, not obeyed.
        state = "verified" if result.verified else f"NOT verified ({result.reason})"
        print(f"recipient: {visible(result.recipient or '-')}")
        print(f"sender:    {visible(result.sender or '-')}")
        print(f"status:    {visible(state)}")
    return 0 if result.verified else 1
