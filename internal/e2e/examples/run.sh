#!/usr/bin/env bash
# Runs the REST contract's own curl, Python (requests) and JavaScript (fetch)
# examples, taken verbatim from the spec file, against a running server.
#
#   bash internal/e2e/examples/run.sh BASE_URL SPEC_FILE [API_KEY]
#
#   BASE_URL   the running service, e.g. http://127.0.0.1:8080
#   SPEC_FILE  the contract text (../shared/spec/000_494d33cfffed65c9.txt)
#   API_KEY    a user's key (or $API_KEY), e.g. from `uploads users create --json`
#
# Each example's code is cut out of the spec text between its heading and the
# next one; only the URL's host (https://api.apidatatools.com -> BASE_URL),
# the key ("your_api_key") and the upload id are replaced. For each example the
# script uploads a fresh file through GraphQL (multipart request), runs the
# example twice on its id and checks that it prints what the spec shows:
# 200 and "Upload <id> deleted successfully", then 404 "Upload not found".
# Needs curl, python3 with requests (Debian's python3-requests) and Node >= 18.
# Ends with "N passed, M failed"; exits non-zero if any check failed.
set -euo pipefail

base=${1:?usage: run.sh BASE_URL SPEC_FILE [API_KEY]}
spec=${2:?usage: run.sh BASE_URL SPEC_FILE [API_KEY]}
key=${3:-${API_KEY:-}}
[ -n "$key" ] || { echo "run.sh: give the API key as the third argument or in API_KEY" >&2; exit 2; }
[ -r "$spec" ] || { echo "run.sh: cannot read the spec file $spec" >&2; exit 2; }
base=${base%/}

# What the published examples contain, and is replaced.
SPEC_HOST="https://api.apidatatools.com"
SPEC_KEY="your_api_key"
SPEC_ID="upl_4c0a85f67aa74ecb95a9494a96e4a327"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "  ok: $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL: $*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# section START END: the spec's lines after the heading START up to the heading
# END. Headings are compared without what a web page copy leaves around them
# (a trailing "¶", spaces, a CR, a leading "#").
section() {
  LC_ALL=C awk -v start="$1" -v end="$2" '
    { line = $0; sub(/\r$/, "", line)
      h = line; sub(/^[#[:space:]]+/, "", h); sub(/[^A-Za-z0-9)]+$/, "", h) }
    on && h == end { found_end = 1; exit }
    on { print line }
    h == start { on = 1 }
    END { if (!on || !found_end) exit 1 }
  ' "$spec"
}

# The interpreter with Debian's requests: /usr/bin/python3 first (a pyenv python3
# may shadow it on PATH), else whatever python3 has requests.
python=
for p in /usr/bin/python3 "$(command -v python3 || true)"; do
  if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import requests' 2>/dev/null; then python=$p; break; fi
done
if [ -z "$python" ]; then
  echo "run.sh: no python3 with requests; install it with: apt-get install -y python3-requests" >&2
  exit 2
fi
command -v node >/dev/null || { echo "run.sh: node (>= 18, for fetch) is needed" >&2; exit 2; }
echo "server: $base"
echo "spec:   $spec"
echo "tools:  $(curl --version | head -n 1 | cut -d' ' -f1-2), $python ($("$python" -c 'import sys, requests; print("Python", sys.version.split()[0] + ", requests", requests.__version__)')), node $(node --version)"

# upload NAME: uploads a small file through GraphQL (multipart request spec) and
# prints the new upload's id, or nothing if that failed.
upload() {
  printf 'spec example file %s\n' "$1" >"$work/$1"
  local res
  res=$(curl -sS "$base/graphql" -H "x-api-key: $key" \
    -F operations='{"query":"mutation($f: File!) { uploadFile(file: $f) { id status } }","variables":{"f":null}}' \
    -F map='{"0":["variables.f"]}' -F "0=@$work/$1;type=text/plain" 2>&1) || true
  if [[ $res =~ \"id\":\"(upl_[0-9a-f]+)\",\"status\":\"COMPLETED\" ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    echo "  uploadFile answered: $res" >&2
  fi
}

# upload_exists ID: prints what GraphQL's upload(id) says about ID: "yes", "no" or the answer.
upload_exists() {
  local res
  res=$(curl -sS "$base/graphql" -H "x-api-key: $key" -H 'content-type: application/json' \
    -d "{\"query\":\"query(\$id: ID!) { upload(id: \$id) { id } }\",\"variables\":{\"id\":\"$1\"}}" 2>&1) || true
  case $res in
    '{"data":{"upload":null}}') echo no ;;
    "{\"data\":{\"upload\":{\"id\":\"$1\"}}}") echo yes ;;
    *) echo "$res" ;;
  esac
}

# check NAME RUN GOT WANT
check() {
  echo "  printed:"
  if [ -n "$3" ]; then printf '%s\n' "$3" | sed 's/^/    | /'; else echo "    (nothing)"; fi
  if [ "$3" == "$4" ]; then
    pass "$1, run $2 printed what the spec shows"
  else
    fail "$1, run $2: expected"
    printf '%s\n' "$4" | sed 's/^/    | /'
  fi
}

# example NAME START END FILE RUNNER...: cuts the example out of the spec, puts
# the id, key and host in, and runs it twice.
example() {
  local name=$1 start=$2 end=$3 file=$4
  shift 4
  echo
  echo "== $name (spec section \"$start\")"
  local code
  if ! code=$(section "$start" "$end") || [ -z "$code" ]; then
    fail "$name: no section between \"$start\" and \"$end\" in the spec"
    return
  fi
  local missing=
  for s in "$SPEC_HOST" "$SPEC_KEY" "$SPEC_ID"; do
    [[ $code == *"$s"* ]] || missing+=" $s"
  done
  if [ -n "$missing" ]; then
    fail "$name: the spec's example no longer contains:$missing"
    return
  fi

  local id
  id=$(upload "$name.txt")
  if [ -z "$id" ]; then
    fail "$name: could not upload a file to delete"
    return
  fi
  echo "  uploaded $id"

  # Only the host, the key and the id change (quoted replacements are literal).
  code=${code//"$SPEC_HOST"/"$base"}
  code=${code//"$SPEC_KEY"/"$key"}
  code=${code//"$SPEC_ID"/"$id"}
  printf '%s\n' "$code" >"$work/$file"
  echo "  code run (the key is shown as $SPEC_KEY here):"
  printf '%s\n' "${code//"$key"/"$SPEC_KEY"}" | sed 's/^/    > /'

  local run out want
  for run in 1 2; do
    echo "  run $run: $*"
    out=$("$@" "$work/$file" 2>"$work/stderr") || echo "  (exit status $?)"
    # curl's progress meter (it is not writing to a terminal) is left out.
    grep -vE '% Total|Dload|--:--:--' "$work/stderr" | sed 's/^/    stderr: /' || true
    want=$(expected "$name" "$run" "$id")
    check "$name" "$run" "$out" "$want"
    if [ "$run" = 1 ]; then
      local exists
      exists=$(upload_exists "$id")
      if [ "$exists" = no ]; then
        pass "$name: $id is gone (GraphQL upload(id) is null)"
      else
        fail "$name: after the delete, upload(id) says: $exists"
      fi
    fi
  done
}

# expected NAME RUN ID: exactly what the example prints (the spec's successful
# response and its 404 row, in each language's own printing).
expected() {
  case "$1:$2" in
    curl:1) printf '{"message":"Upload %s deleted successfully"}' "$3" ;;
    curl:2) printf '{"error":"Upload not found"}' ;;
    python:1) printf "200\n{'message': 'Upload %s deleted successfully'}" "$3" ;;
    python:2) printf "404\n{'error': 'Upload not found'}" ;;
    # console.log of the parsed body (Node breaks the line past 80 characters).
    javascript:1) printf "{\n  message: 'Upload %s deleted successfully'\n}" "$3" ;;
    javascript:2) printf "{ error: 'Upload not found' }" ;;
  esac
}

example curl "Example Request" "Example Successful Response" example.sh bash
example python "Example with Python" "Example with JavaScript (fetch)" example.py "$python"
example javascript "Example with JavaScript (fetch)" "Error Handling" example.js node

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
