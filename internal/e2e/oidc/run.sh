#!/usr/bin/env bash
# Runs the OpenID Connect tests: a real issuer (oidc-provider) and the service,
# each started by the tests on loopback ports:
#
#   go build -o /tmp/uploads . && UPLOADS_BIN=/tmp/uploads bash internal/e2e/oidc/run.sh
#
# Installs the pinned packages from package-lock.json with `npm ci` first when
# node_modules is missing or was installed from another lockfile.
set -euo pipefail
: "${UPLOADS_BIN:?set UPLOADS_BIN to the built server binary (go build -o BIN .)}"
UPLOADS_BIN=$(realpath "$UPLOADS_BIN")
export UPLOADS_BIN
cd "$(dirname "$0")"

stamp=node_modules/.installed-from-lockfile
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
exec node --test --test-concurrency=1 --test-reporter=spec
