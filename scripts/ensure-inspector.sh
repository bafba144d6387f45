#!/usr/bin/env bash
# Install the MCP Inspector CLI the MCP tests drive, pinned, idempotently.
#
#   scripts/ensure-inspector.sh
#
# - tests/mcp/inspector/node_modules matches package-lock.json already: exit 0 at once.
# - npm missing: on Debian/Ubuntu as root, install nodejs and npm with apt-get; anywhere
#   else fail with what to do.
# - Then `npm ci` from the lock file (exact versions and integrity hashes; install scripts
#   off: the Inspector CLI needs none).
#
# Used by `make test` (and so `.ci/run`), where a missing Inspector must fail the tests,
# never skip them.
set -euo pipefail

cd "$(dirname "$0")/../tests/mcp/inspector"
readonly stamp=node_modules/.installed-lock

say() { printf 'ensure-inspector: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing nodejs and npm with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        die "npm is not installed: install Node.js (20 or newer) and npm, then run make inspector"
    fi
fi
say "npm ci in tests/mcp/inspector (@modelcontextprotocol/inspector, pinned)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
