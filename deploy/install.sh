#!/usr/bin/env bash
# Install bounce-handler for production (run as root from a checkout or an unpacked sdist):
#
#   deploy/install.sh [--prefix /opt/bounce-handler] [--user nobody] [--group nogroup]
#                     [--config-dir /etc/bounce-handler] [--state-dir /var/lib/bounce-handler]
#                     [--spool-dir /var/spool/bounce-handler] [--python /usr/bin/python3]
#                     [--extras postgresql] [--source DIR] [--bin-dir /usr/local/bin]
#                     [--no-system]
#
# What it does, each step idempotent (re-run it to upgrade):
#   1. PREFIX/venv from the system interpreter, with the project installed NON-editable:
#      the pipe user (nobody) runs PREFIX/venv/bin/bounce-handler and must never need to
#      read the checkout; a pyenv under a 0700 home would not even be executable by it.
#      Every directory from / to PREFIX must be traversable (o+x): checked.
#   2. CONFIG_DIR (0750 root:GROUP) with config.toml (0640 root:GROUP) from deploy/config.toml
#      if there is none -- the pipe user reads it through its group; nobody else can (a
#      PostgreSQL URL may carry a password).  An existing config.toml is never overwritten.
#   3. STATE_DIR (0750 USER:GROUP) for the SQLite store, STATE_DIR/maps (0755 USER:GROUP)
#      for the access maps the cron jobs export (deploy/cron), and SPOOL_DIR (0770
#      USER:GROUP, and its tmp/ new/ bad/) for the PostgreSQL spool: the pipe user writes
#      there (SQLite also creates its -wal and -shm files next to the database, so the
#      *directory* must be writable).
#   4. `bounces db upgrade`, run AS THE PIPE USER, so the database file it creates belongs
#      to that user.
#   5. BIN_DIR/bounces -> PREFIX/venv/bin/bounces for the administrator (--bin-dir ''
#      skips it).
#   6. PREFIX/doc: README.md and deploy/*.md, which the systemd units name in
#      Documentation= (the checkout may be gone; the venv holds no documentation).
# deploy/spool-and-lmtp.md's permission table says the same as steps 2-3, and
# tests/e2e/test_deploy_guide.py checks it against what this script leaves behind.
# --no-system stops after step 1 (a world-readable copy for tests; no root needed then).
set -euo pipefail

PREFIX=/opt/bounce-handler
PIPE_USER=nobody
PIPE_GROUP=nogroup
CONFIG_DIR=/etc/bounce-handler
STATE_DIR=/var/lib/bounce-handler
SPOOL_DIR=/var/spool/bounce-handler
PYTHON=/usr/bin/python3
EXTRAS=postgresql
SOURCE="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR=/usr/local/bin
SYSTEM=1

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "== $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --user) PIPE_USER="$2"; shift 2 ;;
        --group) PIPE_GROUP="$2"; shift 2 ;;
        --config-dir) CONFIG_DIR="$2"; shift 2 ;;
        --state-dir) STATE_DIR="$2"; shift 2 ;;
        --spool-dir) SPOOL_DIR="$2"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --extras) EXTRAS="$2"; shift 2 ;;
        --source) SOURCE="$2"; shift 2 ;;
        --bin-dir) BIN_DIR="$2"; shift 2 ;;
        --no-system) SYSTEM=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be absolute (pipe(8) has no useful cwd)" ;; esac
[ -f "$SOURCE/pyproject.toml" ] || die "--source $SOURCE has no pyproject.toml"
[ -x "$PYTHON" ] || die "$PYTHON not found (apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is older than 3.11"
if [ "$SYSTEM" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "run as root (or --no-system for a venv only)"
    id "$PIPE_USER" >/dev/null 2>&1 || die "no user $PIPE_USER (useradd --system $PIPE_USER)"
    getent group "$PIPE_GROUP" >/dev/null || die "no group $PIPE_GROUP"
    case "$PIPE_USER" in root|postfix) die "--user must not be root or postfix (pipe(8) refuses them)" ;; esac
fi

# Files we create are world-readable unless chmod'ed below (a root umask of 077 would
# otherwise make the venv unreadable for the pipe user).
umask 022

say "1. venv in $PREFIX/venv"
mkdir -p "$PREFIX"
chmod 0755 "$PREFIX"
# Every ancestor must let the pipe user through (o+x), or pipe(8) fails with "permission
# denied" on every bounce.
d="$PREFIX"
while [ "$d" != / ]; do
    d=$(dirname "$d")
    perms=$(stat -c %A "$d")
    [ "${perms:9:1}" = x ] || [ "${perms:9:1}" = t ] \
        || die "$d is not traversable by other users (mode $perms): pick another --prefix"
done
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    "$PYTHON" -m venv "$PREFIX/venv"
fi
# Non-editable, built from a scratch copy of the source: the installed package does not
# point back at the checkout, and setuptools' build/ directory does not land in it.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
tar -C "$SOURCE" --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ -cf - . | tar -C "$build" -xf -
spec="$build"
[ -n "$EXTRAS" ] && spec="$build[$EXTRAS]"
# A current pip first: the console-script wrapper that Debian's pip 23 writes imports `re`
# (~4 ms a process, paid by every bounce); newer pips write one that does not.
"$PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check --no-input -U pip
"$PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check --no-input "$spec"
chmod -R a+rX "$PREFIX"
"$PREFIX/venv/bin/bounce-handler" --version

if [ "$SYSTEM" = 0 ]; then
    say "done (--no-system): $PREFIX/venv/bin/bounce-handler"
    exit 0
fi

say "2. configuration in $CONFIG_DIR"
install -d -m 0750 -o root -g "$PIPE_GROUP" "$CONFIG_DIR"
if [ ! -e "$CONFIG_DIR/config.toml" ]; then
    # The example has every key commented (= defaults); name the store explicitly.
    {
        sed -n '1,/^$/p' "$SOURCE/deploy/config.toml"
        printf '[database]\nurl = "sqlite:///%s/bounces.db"\nspool_dir = "%s"\n\n' \
            "$STATE_DIR" "$SPOOL_DIR"
        sed '1,/^$/d; /^\[database\]$/d' "$SOURCE/deploy/config.toml"
    } > "$CONFIG_DIR/config.toml.new"
    mv "$CONFIG_DIR/config.toml.new" "$CONFIG_DIR/config.toml"
    echo "   wrote $CONFIG_DIR/config.toml (edit [verp] domain and the rest, then re-run)"
fi
chown root:"$PIPE_GROUP" "$CONFIG_DIR/config.toml"
chmod 0640 "$CONFIG_DIR/config.toml"

say "3. state, maps and spool directories"
install -d -m 0750 -o "$PIPE_USER" -g "$PIPE_GROUP" "$STATE_DIR"
# The cron export jobs write the access maps here (as the pipe user); Postfix opens them
# as root, before its daemons drop privileges.
install -d -m 0755 -o "$PIPE_USER" -g "$PIPE_GROUP" "$STATE_DIR/maps"
# The spool layout (store/spool.py): tmp/ for files being written, new/ for complete
# batches the daemon drains, bad/ for what it could not read.
for sub in "" tmp new bad; do
    install -d -m 0770 -o "$PIPE_USER" -g "$PIPE_GROUP" "$SPOOL_DIR/$sub"
done

say "4. database schema (as $PIPE_USER)"
# As the pipe user: a SQLite file created by root would be read-only for the pipe.
runuser -u "$PIPE_USER" -- "$PREFIX/venv/bin/bounces" --config "$CONFIG_DIR/config.toml" \
    db upgrade
# It holds recipient addresses: not for others (SQLite gives its -wal and -shm files the
# database file's mode).
[ ! -f "$STATE_DIR/bounces.db" ] || chmod 0640 "$STATE_DIR/bounces.db"
# The caches the pipe reads (`bounces config check`: the parsed config and the parser's
# precompiled patterns), written with the config's mode.
"$PREFIX/venv/bin/bounces" --config "$CONFIG_DIR/config.toml" config check
chown root:"$PIPE_GROUP" "$CONFIG_DIR"/.config.toml.cache "$CONFIG_DIR"/.config.toml.patterns \
    2>/dev/null || true

if [ -n "$BIN_DIR" ]; then
    say "5. $BIN_DIR/bounces"
    ln -sfn "$PREFIX/venv/bin/bounces" "$BIN_DIR/bounces"
fi

say "6. documentation in $PREFIX/doc"
install -d -m 0755 "$PREFIX/doc" "$PREFIX/doc/deploy"
install -m 0644 "$SOURCE/README.md" "$PREFIX/doc/README.md"
install -m 0644 "$SOURCE"/deploy/*.md "$PREFIX/doc/deploy/"

say "done. Next: deploy/README.md step 3 (Postfix), then: bounces doctor"
