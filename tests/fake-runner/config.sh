#!/usr/bin/env bash
# A stand-in for the GitHub Actions runner's config.sh (actions/runner), for tests: same
# arguments, same console lines, same exit codes as far as miglet relies on them. See README.md
# beside it for where the lines come from.
#   config.sh --url URL --token TOKEN [--name N] [--labels a,b] [--runnergroup G]
#             [--unattended] [--replace] [--ephemeral]
#   config.sh remove --token TOKEN
# Two modes, chosen by --url:
# - offline (the host is github.com): talks to no one. The token "bad-token" is refused the way
#   GitHub refuses an expired registration token; any other token works.
# - online (any other host: the GitHub stand-in, tests/github-standin): registers for real with
#   curl, like the real runner against a GitHub Enterprise Server host (API at
#   https://HOST/api/v3): POST /actions/runner-registration with the token, then adds the
#   runner on the stand-in's pipelines service. The CA file is $FAKE_RUNNER_CA_FILE, else
#   $SSL_CERT_FILE, else the system's. `remove` is online when .runner came from an online
#   config.
# Every invocation is appended to _fake/invocations.log (tests check arguments there).
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR/_fake"
echo "config.sh $*" >>"$DIR/_fake/invocations.log"
# A test can hold config.sh before it does anything (the file _fake/hold-config), as a real
# one waiting on an unreachable GitHub would be; its pid is in _fake/config.pid meanwhile.
if [[ ${1:-} != remove && -e $DIR/_fake/hold-config ]]; then
  echo $$ >"$DIR/_fake/config.pid"
  while [[ -e $DIR/_fake/hold-config ]]; do sleep 0.05; done
fi

banner() {
  cat <<'B'

--------------------------------------------------------------------------------
|        ____ _ _   _   _       _          _        _   _                      |
|       / ___(_) |_| | | |_   _| |__      / \   ___| |_(_) ___  _ __  ___      |
|      | |  _| | __| |_| | | | | '_ \    / _ \ / __| __| |/ _ \| '_ \/ __|     |
|      | |_| | | |_|  _  | |_| | |_) |  / ___ \ (__| |_| | (_) | | | \__ \     |
|       \____|_|\__|_| |_|\__,_|_.__/  /_/   \_\___|\__|_|\___/|_| |_|___/     |
|                                                                              |
|                       Self-hosted runner registration                        |
|                                                                              |
--------------------------------------------------------------------------------
B
}

# ---- online mode helpers (JSON from the stand-in is compact Go output) ----
CA=${FAKE_RUNNER_CA_FILE:-${SSL_CERT_FILE:-}}
# jstr JSON KEY / jnum JSON KEY: a top-level string / number field of a flat JSON object.
jstr() { sed -n 's/.*"'"$2"'":"\([^"]*\)".*/\1/p' <<<"$1" | head -n1; }
jnum() { sed -n 's/.*"'"$2"'":\([0-9][0-9]*\).*/\1/p' <<<"$1" | head -n1; }
jesc() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
host_of() { local u=${1#*://}; u=${u%%/*}; u=${u##*@}; printf '%s' "$u"; }
is_github_com() {
  local h
  h=$(host_of "$1" | tr 'A-Z' 'a-z')
  h=${h%%:*}
  [[ $h == github.com || $h == www.github.com ]]
}
api_of() { printf '%s://%s/api/v3' "${1%%://*}" "$(host_of "$1")"; }
# .NET's names for the status codes the runner prints.
reason() {
  case $1 in
    400) echo "BadRequest Bad Request" ;; 401) echo "Unauthorized Unauthorized" ;;
    403) echo "Forbidden Forbidden" ;; 404) echo "NotFound Not Found" ;;
    409) echo "Conflict Conflict" ;; 422) echo "UnprocessableEntity Unprocessable Entity" ;;
    429) echo "TooManyRequests Too Many Requests" ;;
    500) echo "InternalServerError Internal Server Error" ;; 502) echo "BadGateway Bad Gateway" ;;
    503) echo "ServiceUnavailable Service Unavailable" ;; *) echo "$1 Unknown" ;;
  esac
}
# http METHOD URL AUTHORIZATION [BODY]: sets HTTP_CODE, HTTP_BODY, HTTP_ERR. The credential
# goes to curl on stdin (-K -), never on its command line.
http() {
  local method=$1 url=$2 auth=$3 body=${4-} out=$DIR/_fake/http.$BASHPID
  local args=(-sS -X "$method" --max-time 30 -H 'Accept: application/json'
    -H 'User-Agent: GitHubActionsRunner-linux-x64/2.321.0 (fake-runner)' -w '\n%{http_code}' -K -)
  [[ -n $CA ]] && args+=(--cacert "$CA")
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  curl "${args[@]}" "$url" >"$out" 2>"$out.err" <<<"header = \"Authorization: $auth\""
  local rc=$?
  HTTP_CODE=$(tail -n1 "$out" 2>/dev/null)
  HTTP_BODY=$(sed '$d' "$out" 2>/dev/null)
  HTTP_ERR=$(sed 's/^curl: ([0-9]*) //' "$out.err" 2>/dev/null)
  rm -f "$out" "$out.err"
  [[ $rc -eq 0 && -n $HTTP_CODE && $HTTP_CODE != 000 ]]
}
# The runner's own report of a failed call (VssHttp's "Http response code" line, the body, and
# the exception's message).
http_failed() {  # METHOD URL
  local r
  r=$(reason "$HTTP_CODE")
  echo "Http response code: ${r%% *} from '$1 $2'"
  echo "$HTTP_BODY"
}
status_line() {
  local r
  r=$(reason "$HTTP_CODE")
  echo "Response status code does not indicate success: $HTTP_CODE (${r#* })."
}
# runner_registration GITHUB_URL TOKEN EVENT: GitHub's real call; sets SERVER and SESSION.
runner_registration() {
  local api
  api=$(api_of "$1")
  REG_URL="$api/actions/runner-registration"
  if ! http POST "$REG_URL" "RemoteAuth $2" "{\"url\":$(jesc "$1"),\"runner_event\":\"$3\"}"; then
    return 2
  fi
  [[ $HTTP_CODE == 200 ]] || return 1
  SERVER=$(jstr "$HTTP_BODY" url)
  SESSION=$(jstr "$HTTP_BODY" token)
}

remove_online() {
  local token=$1 ghurl id rc
  ghurl=$(jstr "$(cat "$DIR/.runner")" gitHubUrl)
  id=$(jnum "$(cat "$DIR/.runner")" agentId)
  runner_registration "$ghurl" "$token" remove
  rc=$?
  if ((rc == 2)); then
    echo "Failed: Removing runner from the server"
    echo "An error occurred: $HTTP_ERR"
    return 1
  elif ((rc != 0)); then
    http_failed POST "$REG_URL"
    echo "Failed: Removing runner from the server"
    status_line
    return 1
  fi
  if ! http DELETE "$SERVER/agents/$id" "Bearer $SESSION"; then
    echo "Failed: Removing runner from the server"
    echo "An error occurred: $HTTP_ERR"
    return 1
  fi
  case $HTTP_CODE in
    204) echo "√ Runner removed successfully" ;;
    404) echo "Does not exist. Skipping Removing runner from the server" ;;
    *)
      http_failed DELETE "$SERVER/agents/$id"
      echo "Failed: Removing runner from the server"
      status_line
      return 1
      ;;
  esac
  rm -f "$DIR/.runner" "$DIR/.credentials"
  echo "√ Removed .credentials"
  echo "√ Removed .runner"
  return 0
}

configure_online() {
  local rc labels_json="" l cred id
  if [[ -f $DIR/.runner ]]; then
    echo "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first."
    return 1
  fi
  runner_registration "$url" "$token" register
  rc=$?
  if ((rc == 2)); then
    echo "An error occurred: $HTTP_ERR"
    return 1
  elif ((rc != 0)); then
    http_failed POST "$REG_URL"
    status_line
    return 1
  fi
  echo
  echo "√ Connected to GitHub"
  echo
  echo "# Runner Registration"
  echo
  local -a list=()
  IFS=, read -ra list <<<"$labels"
  for l in "${list[@]}"; do
    l=$(sed 's/^ *//; s/ *$//' <<<"$l")
    [[ -n $l ]] && labels_json+="${labels_json:+,}$(jesc "$l")"
  done
  if ! http POST "$SERVER/agents" "Bearer $SESSION" \
    "{\"name\":$(jesc "$name"),\"labels\":[$labels_json],\"runner_group\":$(jesc "$group"),\"ephemeral\":$ephemeral,\"replace\":$replace,\"work_folder\":\"_work\"}"; then
    echo "An error occurred: $HTTP_ERR"
    return 1
  fi
  case $HTTP_CODE in
    200) ;;
    409) echo "A runner exists with the same name"; return 1 ;;
    404) echo "Could not find any self-hosted runner group named \"$group\"."; return 1 ;;
    *) http_failed POST "$SERVER/agents"; status_line; return 1 ;;
  esac
  id=$(jnum "$HTTP_BODY" id)
  cred=$(jstr "$HTTP_BODY" credential)
  echo
  echo "√ Runner successfully added"
  echo "√ Runner connection is good"
  echo
  echo "# Runner settings"
  echo
  echo
  echo "√ Settings Saved."
  echo
  printf '{"agentId":%s,"agentName":%s,"serverUrl":%s,"gitHubUrl":%s,"ephemeral":%s,"labels":%s,"runnerGroup":%s,"workFolder":"_work"}\n' \
    "$id" "$(jesc "$name")" "$(jesc "$SERVER")" "$(jesc "$url")" "$ephemeral" "$(jesc "$labels")" \
    "$(jesc "$group")" >"$DIR/.runner"
  (umask 077 && printf '%s\n' "$cred" >"$DIR/.credentials")
  return 0
}

if [[ ${1:-} == remove ]]; then
  shift
  token=""
  while (($#)); do case $1 in --token) token=$2; shift 2 ;; *) shift ;; esac; done
  banner
  echo
  echo "# Runner removal"
  echo
  if [[ -f $DIR/.runner ]] && grep -q '"serverUrl"' "$DIR/.runner"; then
    remove_online "$token"
    exit $?
  fi
  if [[ -z $token || $token == bad-token ]]; then
    echo "Failed: Removing runner from the server"
    echo "Response status code does not indicate success: 404 (Not Found)."
    exit 1
  fi
  echo "√ Runner removed successfully"
  rm -f "$DIR/.runner" "$DIR/.credentials"
  echo "√ Removed .credentials"
  echo "√ Removed .runner"
  exit 0
fi

url="" token="" name=$(hostname) labels="" group="Default" ephemeral=false replace=false
while (($#)); do
  case $1 in
    --url) url=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    --runnergroup) group=$2; shift 2 ;;
    --ephemeral) ephemeral=true; shift ;;
    --replace) replace=true; shift ;;
    --unattended|--disableupdate) shift ;;
    *) echo "Unrecognized command-line input arguments: '$1'. For usage refer to: .\\config.cmd --help or ./config.sh --help"; exit 1 ;;
  esac
done
banner
echo
echo "# Authentication"
echo
if [[ -z $url || -z $token ]]; then
  echo "Invalid configuration provided for url. Terminating unattended configuration."
  exit 1
fi
if ! is_github_com "$url"; then
  configure_online
  exit $?
fi
if [[ $token == bad-token ]]; then
  echo "Http response code: NotFound from 'POST https://api.github.com/actions/runner-registration'"
  echo "{\"message\":\"Not Found\",\"documentation_url\":\"https://docs.github.com/rest\"}"
  echo "Response status code does not indicate success: 404 (Not Found)."
  exit 1
fi
echo
echo "√ Connected to GitHub"
echo
echo "# Runner Registration"
echo
echo
echo "√ Runner successfully added"
echo "√ Runner connection is good"
echo
echo "# Runner settings"
echo
echo
echo "√ Settings Saved."
echo
printf '{"agentName":"%s","labels":"%s","runnerGroup":"%s","ephemeral":%s,"gitHubUrl":"%s"}\n' \
  "$name" "$labels" "$group" "$ephemeral" "$url" >"$DIR/.runner"
echo "token-for-$name" >"$DIR/.credentials"
exit 0
