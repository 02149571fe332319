#!/usr/bin/env bash
# Regenerate deploy/config.toml from the settings SCHEMA (every key commented, with its
# default and why).  Run after adding a key to bounce_handler/settings.py;
# tests/e2e/test_deploy_files.py fails until you do.
set -euo pipefail
cd "$(dirname "$0")/.."
bounces=${BOUNCES:-.venv/bin/bounces}
out=deploy/config.toml
{
    cat <<'HEAD'
# /etc/bounce-handler/config.toml -- bounce-handler's one configuration file.
#
# Every key, with its default and why.  A commented key means "the default": uncomment
# what you change.  Unknown sections or keys are errors (a misspelt key silently ignored
# is how a threshold never fires).  After every edit run `bounces config check`
# (validates, and refreshes the cache the pipe reads) and `bounces doctor`.
#
# Mode 0640, owner root, group of the pipe user (nogroup for user=nobody): the pipe must
# read it, nobody else needs to (a PostgreSQL URL may hold a password).
#
# Generated from bounce_handler/settings.py SCHEMA by deploy/config-example.sh;
# tests/e2e/test_deploy_files.py fails when a key is missing here.

HEAD
    # Key lines become "# key = default"; comments and [section] lines stay.
    "$bounces" --config /dev/null config show --defaults | sed -E 's/^([a-z_0-9]+ = )/# \1/'
    cat <<'TAIL'

# [rules] -- the threshold engine's rules (dead recipients, compromised senders,
# throttling destinations) are free-form tables validated by the judge; see
# `bounces flags --help` and the judge's documentation for the keys and defaults.
TAIL
} > "$out.new"
mv "$out.new" "$out"
echo "wrote $out"
