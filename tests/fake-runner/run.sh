#!/usr/bin/env bash
# A stand-in for the GitHub Actions runner's run.sh (actions/runner), for tests. It prints the
# runner's own console lines (README.md beside it).
#   run.sh [--jitconfig BASE64]
# Two modes:
# - offline (configured by config.sh for github.com, or a --jitconfig that is not the GitHub
#   stand-in's): talks to no one and takes orders from a test through the FIFO _fake/control,
#   one per line:
#     job NAME         -> "<ts>: Running job: NAME"
#     finish RESULT    -> "<ts>: Job NAME completed with result: RESULT"; an ephemeral runner
#                         then exits 0, as the real one does after its one job
# - online (configured by config.sh against the GitHub stand-in, or a --jitconfig from its
#   generate-jitconfig): opens a session on the stand-in with curl and long-polls it for jobs;
#   the test queues and finishes jobs through the stand-in's test API instead of the FIFO.
# In both modes the FIFO also takes:
#     crash CODE       -> exits with CODE at once
#     hang             -> ignores SIGINT from now on (so only SIGKILL stops it)
# SIGINT (Ctrl-C, what miglet sends to stop it) -> "Exiting..." and exit 0 (online: after
# closing its session).
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
FAKE=$DIR/_fake
mkdir -p "$FAKE"
echo "run.sh $*" >>"$FAKE/invocations.log"

# ---- online mode helpers (JSON from the stand-in is compact Go output) ----
jstr() { sed -n 's/.*"'"$2"'":"\([^"]*\)".*/\1/p' <<<"$1" | head -n1; }
jesc() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
is_github_com() {
  local h=${1#*://}
  h=${h%%/*}
  h=${h##*@}
  h=${h%%:*}
  h=$(tr 'A-Z' 'a-z' <<<"$h")
  [[ $h == github.com || $h == www.github.com ]]
}

online=false ephemeral=false server="" cred="" name=""
if [[ ${1:-} == --jitconfig ]]; then
  [[ -n ${2:-} ]] || { echo "Error: --jitconfig needs a value"; exit 1; }
  ephemeral=true  # JIT runners are always ephemeral
  # A stand-in JIT config: base64 of {".runner": b64, ".credentials": b64, ...}.
  outer=$(base64 -d 2>/dev/null <<<"$2" | tr -d '\n')
  runner_json=$(base64 -d 2>/dev/null <<<"$(jstr "$outer" '\.runner')" | tr -d '\n')
  creds_json=$(base64 -d 2>/dev/null <<<"$(jstr "$outer" '\.credentials')" | tr -d '\n')
  server=$(jstr "$runner_json" ServerUrl)
  if [[ -n $server ]] && ! is_github_com "$server"; then
    online=true
    cred=$(jstr "$creds_json" Token)
    name=$(jstr "$runner_json" AgentName)
  fi
elif [[ ! -f $DIR/.runner ]]; then
  echo "Not configured. Run config.(sh/cmd) to configure the runner."
  exit 2
else
  grep -q '"ephemeral":true' "$DIR/.runner" && ephemeral=true
  if grep -q '"serverUrl"' "$DIR/.runner"; then
    online=true
    server=$(jstr "$(cat "$DIR/.runner")" serverUrl)
    name=$(jstr "$(cat "$DIR/.runner")" agentName)
    cred=$(head -n1 "$DIR/.credentials" 2>/dev/null)
  fi
fi

ts() { date -u '+%Y-%m-%d %H:%M:%SZ'; }
[[ -p $FAKE/control ]] || mkfifo "$FAKE/control"
rm -f "$FAKE/hang"

if [[ $online == true ]]; then
  CA=${FAKE_RUNNER_CA_FILE:-${SSL_CERT_FILE:-}}
  CHILD=""  # the curl or sleep this shell is waiting for
  # http METHOD URL [BODY] [MAX_SECONDS]: sets HTTP_CODE, HTTP_BODY, HTTP_ERR. curl runs in the
  # background and this shell waits for it, so a trapped signal interrupts the wait at once;
  # the credential goes to curl on stdin (-K -), never on its command line.
  http() {
    local method=$1 url=$2 body=${3-} out=$FAKE/http.$BASHPID
    local args=(-sS -X "$method" --max-time "${4:-30}" -H 'Accept: application/json'
      -H 'User-Agent: GitHubActionsRunner-linux-x64/2.321.0 (fake-runner)' -w '\n%{http_code}' -K -)
    [[ -n $CA ]] && args+=(--cacert "$CA")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl "${args[@]}" "$url" >"$out" 2>"$out.err" <<<"header = \"Authorization: Bearer $cred\"" &
    CHILD=$!
    wait "$CHILD"
    local rc=$?
    CHILD=""
    HTTP_CODE=$(tail -n1 "$out" 2>/dev/null)
    HTTP_BODY=$(sed '$d' "$out" 2>/dev/null)
    HTTP_ERR=$(sed 's/^curl: ([0-9]*) //' "$out.err" 2>/dev/null)
    rm -f "$out" "$out.err"
    [[ $rc -eq 0 && -n $HTTP_CODE && $HTTP_CODE != 000 ]]
  }
  nap() { sleep "$1" & CHILD=$!; wait "$CHILD"; CHILD=""; }
  deleted() {
    echo "$(ts): Runner registration has been deleted from server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently."
  }

  sid="" poller="" reader=""
  on_int() {
    [[ -e $FAKE/hang ]] && return  # told to hang: only SIGKILL stops it now
    [[ -n $CHILD ]] && kill "$CHILD" 2>/dev/null
    for p in $poller $reader; do kill "$p" 2>/dev/null; done
    for p in $poller $reader; do wait "$p" 2>/dev/null; done
    [[ -n $sid ]] && http DELETE "$server/sessions/$sid" "" 5
    echo "Exiting..."
    exit 0
  }
  trap on_int INT

  # A session. "A session for this runner already exists" (the previous run.sh crashed and the
  # service has not dropped its session yet) is retried for a minute, like the real runner.
  deadline=$((SECONDS + 60)) told=false
  while true; do
    if ! http POST "$server/sessions" '{}'; then
      if ((SECONDS < deadline)); then
        [[ $told == true ]] || echo "$(ts): Runner connect error: $HTTP_ERR. Retrying until reconnected."
        told=true
        nap 2
        continue
      fi
      echo "An error occurred: $HTTP_ERR"
      exit 1
    fi
    msg=$(jstr "$HTTP_BODY" message)
    case $HTTP_CODE in
      200) sid=$(jstr "$HTTP_BODY" session_id); break ;;
      409)
        if [[ $msg == "A session for this runner already exists." ]] && ((SECONDS < deadline)); then
          [[ $told == true ]] || echo "$(ts): A session for this runner already exists."
          told=true
          nap 1
          continue
        fi
        echo "An error occurred: $msg"
        exit 1
        ;;
      401 | 404) deleted; exit 1 ;;
      *) echo "An error occurred: ${msg:-HTTP $HTTP_CODE}"; exit 1 ;;
    esac
  done

  echo "√ Connected to GitHub"
  echo
  echo "Current runner version: '2.321.0'"
  echo "$(ts): Listening for Jobs"
  echo $$ >"$FAKE/run.pid"

  # The FIFO: crash and hang only (jobs come from the stand-in). Only this shell reacts to
  # SIGINT: the children ignore it explicitly (this shell's INT trap is already set, and a
  # subshell resets a trapped signal to its default rather than ignoring it).
  (
    trap '' INT
    exec 3<>"$FAKE/control"  # read-write: opening never blocks and reads never see EOF
    while read -r cmd arg <&3; do
      case $cmd in
        crash) echo "An error occurred: simulated crash"; exit "${arg:-1}" ;;
        hang) touch "$FAKE/hang" ;;
      esac
    done
  ) &
  reader=$!

  # The message loop: long polls of at most 50 s.
  (
    trap '' INT
    trap '[[ -n $CHILD ]] && kill "$CHILD" 2>/dev/null; exit 143' TERM
    declare -A names=()
    while true; do
      if ! http GET "$server/sessions/$sid/messages?wait=50" "" 70; then
        echo "$(ts): Runner connect error: $HTTP_ERR. Retrying until reconnected."
        nap 2
        continue
      fi
      case $HTTP_CODE in
        200)
          type=$(jstr "$HTTP_BODY" type)
          job=$(jstr "$HTTP_BODY" job_id)
          case $type in
            job)
              names[$job]=$(jstr "$HTTP_BODY" name)
              echo "$(ts): Running job: ${names[$job]}"
              ;;
            finish)
              result=$(jstr "$HTTP_BODY" result)
              name=${names[$job]:-$(jstr "$HTTP_BODY" name)}
              # The job's result reaches the service before the listener prints it, as in the
              # real runner (the worker reports completion, then JobDispatcher logs the line):
              # whoever reads the line may stop the runner at once.
              http POST "$server/jobs/$job/complete" "{\"result\":$(jesc "$result")}" ||
                echo "$(ts): Runner connect error: $HTTP_ERR."
              echo "$(ts): Job $name completed with result: $result"
              unset "names[$job]"
              if [[ $ephemeral == true ]]; then
                echo "$(ts): Runner execution has been finished, exiting because it is an ephemeral runner."
                http DELETE "$server/sessions/$sid" "" 5
                exit 0
              fi
              ;;
          esac
          ;;
        204) ;;
        401 | 404) deleted; exit 1 ;;
        *)
          echo "$(ts): Runner connect error: HTTP $HTTP_CODE. Retrying until reconnected."
          nap 2
          ;;
      esac
    done
  ) &
  poller=$!

  while true; do
    ended=""
    wait -n -p ended "$poller" "$reader"
    rc=$?
    # wait returns >128 without a pid when a trapped signal interrupted it.
    [[ -z ${ended:-} ]] && continue
    if [[ $ended == "$reader" ]]; then other=$poller; else other=$reader; fi
    kill "$other" 2>/dev/null
    wait "$other" 2>/dev/null
    exit "$rc"
  done
fi

echo "√ Connected to GitHub"
echo
echo "Current runner version: '2.321.0'"
echo $$ >"$FAKE/run.pid"
# A test can hold the runner before it listens (the file _fake/hold-listen), as a real one
# that is slow to reach GitHub would be.
# A SIGINT from here until on_int is in place is noted and acted on then: acted on at once it
# could leave the order reader below running on its own (it came between the fork and
# `reader=$!`), printing for a runner that had said it was exiting.
got_int=""
trap 'got_int=1' INT
while [[ -e $FAKE/hold-listen && -z $got_int ]]; do sleep 0.05; done
if [[ -n $got_int ]]; then echo "Exiting..."; exit 0; fi
echo "$(ts): Listening for Jobs"

# The orders are read by a background child, so that this shell sits in `wait`, which a
# trapped SIGINT interrupts (a blocked `read` would not be, and a read with a timeout can lose
# a partly read line). A background child of a non-interactive shell ignores SIGINT, so only
# this shell reacts to it.
(
  exec 3<>"$FAKE/control"  # read-write: opening never blocks and reads never see EOF
  job=""
  while read -r cmd arg <&3; do
    case $cmd in
      job) job=$arg; echo "$(ts): Running job: $job" ;;
      finish)
        echo "$(ts): Job $job completed with result: $arg"
        job=""
        if [[ $ephemeral == true ]]; then
          echo "$(ts): Runner execution has been finished, exiting because it is an ephemeral runner."
          exit 0
        fi
        ;;
      crash) echo "An error occurred: simulated crash"; exit "${arg:-1}" ;;
      hang) touch "$FAKE/hang" ;;
    esac
  done
) &
reader=$!

on_int() {
  [[ -e $FAKE/hang ]] && return  # told to hang: only SIGKILL stops it now
  echo "Exiting..."
  kill "$reader" 2>/dev/null
  exit 0
}
trap on_int INT
[[ -n $got_int ]] && on_int
while true; do
  wait "$reader"
  rc=$?
  # wait returns >128 when a trapped signal interrupted it; the child is then still running.
  if kill -0 "$reader" 2>/dev/null; then continue; fi
  exit "$rc"
done
