#!/usr/bin/env bash
# Checks a running service's subscriptions with the protocols' own clients,
# pinned in package-lock.json: graphql-sse's and graphql-ws's.
#
#   SERVICE_URL=http://127.0.0.1:8080 API_KEY=ukey_… [ALLOWED_ORIGIN=http://…] \
#     bash internal/e2e/subscriptions/run.sh
#
# Installs the pinned packages with `npm ci` first when node_modules is
# missing or was installed from another lockfile.
set -euo pipefail
cd "$(dirname "$0")"
: "${SERVICE_URL:?set SERVICE_URL, e.g. http://127.0.0.1:8080}"
: "${API_KEY:?set API_KEY, a key of a user of the service}"

stamp=node_modules/.installed-from-lockfile
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
GRAPHQL_URL=$SERVICE_URL/graphql exec node --test --test-reporter=spec subscriptions.test.mjs
