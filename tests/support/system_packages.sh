#!/bin/sh
# Debian packages the test suite needs beyond Python: chromium (browser tests, driven by the PyPI
# playwright package, never by a browser download of Playwright's own) and Node (the all.js bridge
# test). Installs only what is missing, as root; `apt-get update` runs only when the package lists
# cannot serve the install. Quick and silent when everything is there.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing (install them as root: apt-get install -y$missing)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
for package in $missing; do
    # No candidate: the lists were never fetched (a fresh machine) or do not know the package.
    if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get update -q
        break
    fi
done
# Lists can also be stale (the mirror dropped the version they name): refresh once and retry.
# shellcheck disable=SC2086
apt-get install -y -q $missing </dev/null || { apt-get update -q && apt-get install -y -q $missing </dev/null; }
