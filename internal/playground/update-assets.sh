#!/usr/bin/env bash
# Vendors GraphiQL's browser build and the React it runs on from the npm
# registry, at the versions pinned below, with their licences. The playground
# embeds these files (go:embed), so it works with no CDN and no internet.
#
# To update: change a version, run this script, check the playground in a
# browser (go test -tags browser ./internal/e2e/), commit assets/ together.
set -euo pipefail
GRAPHIQL_VERSION=3.9.0 # the last major with a UMD build; 4+ ship ES modules only
REACT_VERSION=18.3.1   # GraphiQL 3 supports React <= 18; React 19 has no UMD build

cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null)
for pkg in graphiql react react-dom; do
  mkdir -p "$tmp/$pkg" && tar xzf "$tmp/$pkg"-[0-9]*.tgz -C "$tmp/$pkg" --strip-components=1
done
out=assets
cp "$tmp/graphiql/graphiql.min.js" "$tmp/graphiql/graphiql.min.css" "$out/"
cp "$tmp/react/umd/react.production.min.js" "$out/"
cp "$tmp/react-dom/umd/react-dom.production.min.js" "$out/"
for pkg in graphiql react react-dom; do cp "$tmp/$pkg/LICENSE" "$out/LICENSE.$pkg"; done
cat >"$out/VERSIONS" <<VERSIONS
graphiql@$GRAPHIQL_VERSION
react@$REACT_VERSION
react-dom@$REACT_VERSION
VERSIONS
echo "vendored: $(tr '\n' ' ' <"$out/VERSIONS")"
