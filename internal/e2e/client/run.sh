#!/usr/bin/env bash
# Runs the GraphQL client (client.mjs) against a running service:
#
#   GRAPHQL_URL=http://127.0.0.1:8080/graphql API_KEY=ukey_… bash internal/e2e/client/run.sh
#
# Installs the pinned packages from package-lock.json with `npm ci` first when
# node_modules is missing or was installed from another lockfile.
set -euo pipefail
cd "$(dirname "$0")"
: "${GRAPHQL_URL:?set GRAPHQL_URL, e.g. http://127.0.0.1:8080/graphql}"
: "${API_KEY:?set API_KEY to the key of a user}"

stamp=node_modules/.installed-from-lockfile
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
exec node client.mjs
