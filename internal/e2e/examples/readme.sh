#!/usr/bin/env bash
# Runs the README's retrying clients ("Retrying safely: Idempotency-Key": the
# curl loop and the fetch function), taken verbatim from README.md, against a
# running server.
#
#   bash internal/e2e/examples/readme.sh BASE_URL [API_KEY]
#
# Only the host (http://localhost:8080 -> BASE_URL), the key ("ukey_…") and
# the upload id are replaced; where uuidgen is missing, the curl loop's key is
# made by python3's uuid module. Each example deletes a fresh upload; the curl
# loop is then run again with the same key and must print the same answer
# (replayed), where a retry without the key prints 404. Needs curl, python3
# and Node >= 18. Exits non-zero if a check failed.
set -euo pipefail

base=${1:?usage: readme.sh BASE_URL [API_KEY]}
key=${2:-${API_KEY:-}}
[ -n "$key" ] || { echo "readme.sh: give the API key as the second argument or in API_KEY" >&2; exit 2; }
base=${base%/}
readme="$(dirname "$0")/../../../README.md"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# block LANG: the first fenced block of LANG in the README's retrying section.
block() {
  python3 - "$readme" "$1" <<'EOF'
import sys
text = open(sys.argv[1]).read()
section = text.split("\n## Retrying safely: `Idempotency-Key`\n", 1)[1].split("\n## ", 1)[0]
code = section.split("\n```" + sys.argv[2] + "\n", 1)[1].split("\n```", 1)[0]
print(code)
EOF
}

upload() {
  printf 'readme example file\n' >"$work/file"
  local res
  res=$(curl -sS "$base/graphql" -H "x-api-key: $key" \
    -F operations='{"query":"mutation($f: File!) { uploadFile(file: $f) { id status } }","variables":{"f":null}}' \
    -F map='{"0":["variables.f"]}' -F "0=@$work/file;type=text/plain")
  [[ $res =~ \"id\":\"(upl_[0-9a-f]+)\",\"status\":\"COMPLETED\" ]] || { echo "uploadFile answered: $res" >&2; exit 1; }
  echo "${BASH_REMATCH[1]}"
}

# adapt ID: the example's host, key and upload id replaced.
adapt() {
  sed -e "s#http://localhost:8080#$base#g" -e "s#ukey_…#$key#g" -e "s#upl_4c0a85f67aa74ecb95a9494a96e4a327#$1#g"
}

failed=0
expect() { # WHAT GOT WANT
  if [ "$2" == "$3" ]; then echo "  ok: $1"; else echo "  FAIL: $1: printed $2, want $3"; failed=1; fi
}

echo "README: the curl retry loop"
id=$(upload)
fixed=$(python3 -c 'import uuid; print(uuid.uuid4())')
block sh | adapt "$id" | sed "s#^key=\$(uuidgen)\$#key=$fixed#" >"$work/retry.sh"
grep -q "key=$fixed" "$work/retry.sh" || { echo "  FAIL: the loop no longer makes its key with key=\$(uuidgen)"; exit 1; }
success="{\"message\":\"Upload $id deleted successfully\"}"
(cd "$work" && bash retry.sh >first.txt)
expect "the delete" "$(cat "$work/first.txt")" "$success"
(cd "$work" && bash retry.sh >again.txt)
expect "the same loop again, same key: the same answer" "$(cat "$work/again.txt")" "$success"
sed -i '/Idempotency-Key/s#-H "Idempotency-Key: $key"##' "$work/retry.sh"
(cd "$work" && bash retry.sh >nokey.txt)
expect "the same without the key: 404" "$(cat "$work/nokey.txt")" '{"error":"Upload not found"}'

echo "README: the fetch client"
id=$(upload)
{ block js | adapt "$id"; echo "console.log(JSON.stringify(await deleteUpload(\"$id\", \"$key\")));"; } >"$work/retry.mjs"
expect "deleteUpload" "$(node "$work/retry.mjs")" "{\"data\":{\"deleteUpload\":{\"deletedUploadId\":\"$id\"}}}"
exit $failed
