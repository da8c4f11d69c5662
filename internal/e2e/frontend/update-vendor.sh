#!/bin/sh
# Refreshes vendor/ from the versions pinned in package.json (oauth4webapi's
# ESM build; graphql-sse's browser build, the one its package.json names as
# "browser"): change a version there, run this, run the browser tests, commit
# package*.json and vendor/. CI checks that vendor/ is the pinned builds, byte
# for byte.
set -eu
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent --save-exact
cp node_modules/oauth4webapi/build/index.js vendor/oauth4webapi.js
cp node_modules/oauth4webapi/LICENSE.md vendor/LICENSE.md
cp node_modules/graphql-sse/umd/graphql-sse.js vendor/graphql-sse.js
cp node_modules/graphql-sse/LICENSE.md vendor/graphql-sse.LICENSE.md
