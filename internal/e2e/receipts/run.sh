#!/usr/bin/env bash
# Verifies a deletion receipt of the running service at SERVICE_URL with
# jose (an independent JOSE implementation), as the API key API_KEY's user:
#
#   SERVICE_URL=http://127.0.0.1:8080 API_KEY=... bash internal/e2e/receipts/run.sh
#
# Installs the pinned packages from package-lock.json with `npm ci` first when
# node_modules is missing or was installed from another lockfile.
set -euo pipefail
: "${SERVICE_URL:?set SERVICE_URL}" "${API_KEY:?set API_KEY}"
cd "$(dirname "$0")"
stamp=node_modules/.installed-from-lockfile
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --silent
  echo "$want" >"$stamp"
fi
exec node --test --test-reporter=spec
