#!/bin/sh
# Refreshes vendor/ from the oauth4webapi version pinned in package.json: change
# the version there, run this, run the browser tests, commit package*.json and
# vendor/. CI checks that vendor/ is the pinned build, byte for byte.
set -eu
cd "$(dirname "$0")"
npm install --no-audit --no-fund --silent --save-exact
cp node_modules/oauth4webapi/build/index.js vendor/oauth4webapi.js
cp node_modules/oauth4webapi/LICENSE.md vendor/LICENSE.md
