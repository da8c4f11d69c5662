#!/usr/bin/env bash
# Checks a running service against two standards, with pinned tools:
#
#   SERVICE_URL=http://127.0.0.1:8080 API_KEY=ukey_… bash internal/e2e/conformance/run.sh audit
#     graphql-http's GraphQL over HTTP server audit of /graphql (audit.mjs)
#   SERVICE_URL=http://127.0.0.1:8080 bash internal/e2e/conformance/run.sh lint
#     @redocly/cli's recommended rules on the served /openapi.json (lint.mjs)
#
# Each fails on any warning. Installs the pinned packages from
# package-lock.json with `npm ci` first when node_modules is missing or was
# installed from another lockfile.
set -euo pipefail
cd "$(dirname "$0")"
: "${SERVICE_URL:?set SERVICE_URL, e.g. http://127.0.0.1:8080}"

stamp=node_modules/.installed-from-lockfile
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
case ${1:-} in
  audit) GRAPHQL_URL=$SERVICE_URL/graphql exec node audit.mjs ;;
  lint) OPENAPI_URL=$SERVICE_URL/openapi.json exec node lint.mjs ;;
  *) echo "usage: run.sh audit|lint" >&2; exit 2 ;;
esac
