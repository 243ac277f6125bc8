#!/usr/bin/env bash
# End-to-end check of the GitHub stand-in with the fake runner (tests/fake-runner), with curl
# and openssl only: an app JWT, an installation token, config.sh -> run.sh -> a job -> remove,
# and the JIT path (generate-jitconfig -> run.sh --jitconfig -> a job -> the ephemeral runner
# exits and is gone; the same JIT config a second time fails). Exits non-zero on any failure;
# stops everything it started. KEEP=1 keeps the temp dir.
#   tests/github-standin/smoke.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FAKE_RUNNER=$(cd "$HERE/../fake-runner" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/standin-smoke.XXXXXX")
STANDIN_PID="" RUNNER_PIDS=()

cleanup() {
  local rc=$?
  for p in "${RUNNER_PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  if [[ -n $STANDIN_PID ]]; then kill -TERM "$STANDIN_PID" 2>/dev/null || true; wait "$STANDIN_PID" 2>/dev/null || true; fi
  if ((rc != 0)); then
    echo "--- smoke FAILED; stand-in log tail:" >&2
    tail -n 20 "$T/gs/standin.log" >&2 2>/dev/null || true
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
jstr() { sed -n 's/.*"'"$2"'":"\([^"]*\)".*/\1/p' <<<"$1" | head -n1; }
# wait_for FILE REGEX [SECONDS]: waits until FILE has a line matching REGEX.
wait_for() {
  local deadline=$((SECONDS + ${3:-15}))
  until grep -qE -- "$2" "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "--- $1:" >&2; cat "$1" >&2 || true; fail "no /$2/ in $1 within ${3:-15}s"; }
    sleep 0.1
  done
}
# wait_exit PID [SECONDS]: waits for a runner (a child of this shell) to exit; sets RC.
wait_exit() {
  local deadline=$((SECONDS + ${2:-15}))
  while kill -0 "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "process $1 still running after ${2:-15}s"
    sleep 0.1
  done
  RC=0
  wait "$1" || RC=$?
}
# group_gone PGID: no live process is left in the runner's process group (no stray curl;
# zombies waiting for init to reap them do not count).
group_gone() {
  local deadline=$((SECONDS + 10))
  while ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; do
    ((SECONDS < deadline)) || { ps -eo pid,pgid,stat,args | awk -v g="$1" '$2 == g' >&2; fail "processes left in group $1"; }
    sleep 0.1
  done
}

step "build"
"$HERE/build.sh" "$T/bin"
BIN=$T/bin/github-standin

step "start the stand-in"
openssl genrsa -out "$T/app.key" 2048 2>/dev/null
openssl rsa -in "$T/app.key" -pubout -out "$T/app.pub" 2>/dev/null
PAT=smoke-pat-$RANDOM$RANDOM
mkdir -p "$T/gs"
"$BIN" serve --dir "$T/gs" --app "7=$T/app.pub" --installation 4242=acme --pat "$PAT" \
  --session-idle 3s --log "$T/gs/standin.log" &
STANDIN_PID=$!
deadline=$((SECONDS + 15))
until [[ -s $T/gs/info.json ]]; do
  ((SECONDS < deadline)) || fail "no info.json"
  kill -0 "$STANDIN_PID" 2>/dev/null || fail "the stand-in exited"
  sleep 0.05
done
INFO=$(cat "$T/gs/info.json")
URL=$(jstr "$INFO" url)
API=$(jstr "$INFO" api_url)
CA=$(jstr "$INFO" ca_file)
[[ $API == "$URL/api/v3" && -s $CA ]] || fail "info.json: $INFO"
export FAKE_RUNNER_CA_FILE=$CA

# api METHOD PATH AUTH [BODY]: sets CODE and BODY.
api() {
  local out
  out=$(curl -sS --cacert "$CA" -X "$1" -H "User-Agent: miglet-smoke" -H "Accept: application/vnd.github+json" \
    -H "X-GitHub-Api-Version: 2022-11-28" ${3:+-H "Authorization: $3"} \
    ${4:+-H "Content-Type: application/json" --data-binary "$4"} -w '\n%{http_code}' "$API$2")
  CODE=$(tail -n1 <<<"$out")
  BODY=$(sed '$d' <<<"$out")
}
# standin METHOD PATH [BODY]: the test API.
standin() {
  local out
  out=$(curl -sS --cacert "$CA" -X "$1" ${3:+-H "Content-Type: application/json" --data-binary "$3"} \
    -w '\n%{http_code}' "$URL/_standin$2")
  CODE=$(tail -n1 <<<"$out")
  BODY=$(sed '$d' <<<"$out")
}
expect() { [[ $CODE == "$1" ]] || fail "$2: HTTP $CODE, want $1: $BODY"; }

step "app JWT -> installation -> installation token"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
h=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
p=$(printf '{"iat":%d,"exp":%d,"iss":"7"}' $((now - 60)) $((now + 540)) | b64url)
JWT="$h.$p.$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$T/app.key" -binary | b64url)"
api GET /orgs/acme/installation "Bearer $JWT"
expect 200 "GET installation"
[[ $(jstr "$BODY" access_tokens_url) == "$API/app/installations/4242/access_tokens" ]] || fail "installation: $BODY"
api POST /app/installations/4242/access_tokens "Bearer $JWT"
expect 201 "access token"
TOKEN=$(jstr "$BODY" token)
[[ $TOKEN =~ ^ghs_[A-Za-z0-9]{36}$ ]] || fail "token: $BODY"
api GET /orgs/acme/installation "Bearer x$JWT"
expect 401 "a bad JWT"

step "config.sh against the stand-in"
api POST /repos/acme/app/actions/runners/registration-token "Bearer $TOKEN"
expect 201 "registration token"
REG=$(jstr "$BODY" token)
R1=$T/r1
mkdir -p "$R1" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R1/"
"$R1/config.sh" --url "$URL/acme/app" --token "$REG" --name smoke-1 --labels linux,gpu \
  --unattended --replace >"$T/r1-config.out" 2>&1 || { cat "$T/r1-config.out"; fail "config.sh"; }
grep -q '^√ Runner successfully added$' "$T/r1-config.out" || fail "config.sh output"
grep -q '^√ Settings Saved.$' "$T/r1-config.out" || fail "config.sh output"
grep -q '"serverUrl"' "$R1/.runner" || fail ".runner: $(cat "$R1/.runner")"

step "the registration token is one-time; a bad token gets GitHub's 404"
R0=$T/r0
mkdir -p "$R0" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R0/"
rc=0
"$R0/config.sh" --url "$URL/acme/app" --token "$REG" --name smoke-0 --unattended >"$T/r0.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "reused token: exit $rc"
grep -qF "Http response code: NotFound from 'POST $API/actions/runner-registration'" "$T/r0.out" || fail "reused token output: $(cat "$T/r0.out")"
grep -qF '{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}' "$T/r0.out" || fail "404 body"
grep -qF 'Response status code does not indicate success: 404 (Not Found).' "$T/r0.out" || fail "404 line"
[[ ! -e $R0/.runner ]] || fail "configured with a used token"

step "run.sh: online, a job, finished"
setsid env --default-signal=INT "$R1/run.sh" >"$T/r1-run.out" 2>&1 &
RUN1=$!
RUNNER_PIDS+=("$RUN1")
wait_for "$T/r1-run.out" ': Listening for Jobs$'
grep -q '^√ Connected to GitHub$' "$T/r1-run.out" || fail "no Connected line"
grep -q "^Current runner version: '2.321.0'$" "$T/r1-run.out" || fail "no version line"
[[ $(cat "$R1/_fake/run.pid") == "$RUN1" ]] || fail "run.pid"
standin GET /state
grep -q '"name":"smoke-1","scope":"repo:acme/app","status":"online"' <<<"$BODY" || fail "not online: $BODY"
standin POST /jobs '{"name":"build","scope":"repo:acme/app","labels":["Linux","gpu"]}'
expect 201 "queue a job"
JOB=$(jstr "$BODY" id)
wait_for "$T/r1-run.out" ': Running job: build$'
api GET /repos/acme/app/actions/runners "Bearer $TOKEN"
grep -q '"busy":true' <<<"$BODY" || fail "not busy: $BODY"
api DELETE "/repos/acme/app/actions/runners/$(sed -n 's/.*"agentId":\([0-9]*\).*/\1/p' "$R1/.runner")" "Bearer $TOKEN"
expect 422 "delete a busy runner"
standin POST "/jobs/$JOB/finish" '{"result":"Succeeded"}'
expect 202 "finish"
wait_for "$T/r1-run.out" ': Job build completed with result: Succeeded$'
deadline=$((SECONDS + 10))
until standin GET /state && grep -q '"name":"build","scope":"repo:acme/app","labels":\["Linux","gpu"\],"status":"completed","runner_name":"smoke-1","result":"Succeeded"' <<<"$BODY"; do
  ((SECONDS < deadline)) || fail "job not completed: $BODY"
  sleep 0.1
done

step "SIGINT: Exiting..., exit 0, runner offline"
kill -INT -- "-$RUN1"
wait_exit "$RUN1"
[[ $RC == 0 ]] || fail "run.sh exit code after SIGINT: exit $RC"
grep -q '^Exiting...$' "$T/r1-run.out" || fail "no Exiting..."
group_gone "$RUN1"
standin GET /state
grep -q '"name":"smoke-1","scope":"repo:acme/app","status":"offline"' <<<"$BODY" || fail "not offline: $BODY"

step "config.sh remove"
api POST /repos/acme/app/actions/runners/remove-token "Bearer $TOKEN"
expect 201 "remove token"
"$R1/config.sh" remove --token "$(jstr "$BODY" token)" >"$T/r1-remove.out" 2>&1 || { cat "$T/r1-remove.out"; fail "config.sh remove"; }
grep -q '^√ Runner removed successfully$' "$T/r1-remove.out" || fail "remove output: $(cat "$T/r1-remove.out")"
[[ ! -e $R1/.runner && ! -e $R1/.credentials ]] || fail "files left after remove"
standin GET /state
grep -q '"runners":\[\]' <<<"$BODY" || fail "runners left: $BODY"

step "JIT: generate-jitconfig -> run.sh --jitconfig -> a job -> ephemeral exit"
api POST /orgs/acme/actions/runners/generate-jitconfig "token $PAT" '{"name":"jit-1","runner_group_id":1,"labels":["linux","x64"]}'
expect 201 "generate-jitconfig"
JIT=$(jstr "$BODY" encoded_jit_config)
[[ -n $JIT ]] || fail "no JIT config: $BODY"
api POST /orgs/acme/actions/runners/generate-jitconfig "token $PAT" '{"name":"jit-1","runner_group_id":1,"labels":["linux"]}'
expect 409 "the same name again"
R2=$T/r2
mkdir -p "$R2" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R2/"
setsid env --default-signal=INT "$R2/run.sh" --jitconfig "$JIT" >"$T/r2-run.out" 2>&1 &
RUN2=$!
RUNNER_PIDS+=("$RUN2")
wait_for "$T/r2-run.out" ': Listening for Jobs$'
standin POST /jobs '{"name":"test","scope":"repo:acme/web","labels":["LINUX"]}'
expect 201 "queue a job"
JOB=$(jstr "$BODY" id)
wait_for "$T/r2-run.out" ': Running job: test$'
standin POST "/jobs/$JOB/finish" '{"result":"Failed"}'
wait_for "$T/r2-run.out" ': Job test completed with result: Failed$'
wait_for "$T/r2-run.out" ': Runner execution has been finished, exiting because it is an ephemeral runner.$'
wait_exit "$RUN2"
[[ $RC == 0 ]] || fail "ephemeral run.sh exit code: exit $RC"
group_gone "$RUN2"
standin GET /state
grep -q '"runners":\[\]' <<<"$BODY" || fail "the JIT runner is still registered: $BODY"
grep -q '"name":"test","scope":"repo:acme/web","labels":\["LINUX"\],"status":"completed","runner_name":"jit-1","result":"Failed"' <<<"$BODY" || fail "job: $BODY"

step "the same JIT config a second time fails (after its runner is gone, and while it runs)"
api POST /orgs/acme/actions/runners/generate-jitconfig "token $PAT" '{"name":"jit-2","runner_group_id":1,"labels":["linux"]}'
JIT2=$(jstr "$BODY" encoded_jit_config)
rc=0
"$R2/run.sh" --jitconfig "$JIT" >"$T/r2-again.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a used JIT config (removed runner): exit $rc: $(cat "$T/r2-again.out")"
grep -qx "An error occurred: This runner's configuration has already been used" "$T/r2-again.out" || fail "used JIT output: $(cat "$T/r2-again.out")"
R3=$T/r3
mkdir -p "$R3" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R3/"
setsid env --default-signal=INT "$R3/run.sh" --jitconfig "$JIT2" >"$T/r3-run.out" 2>&1 &
RUN3=$!
RUNNER_PIDS+=("$RUN3")
wait_for "$T/r3-run.out" ': Listening for Jobs$'
rc=0
"$R2/run.sh" --jitconfig "$JIT2" >"$T/r3-again.out" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a used JIT config: exit $rc"
grep -qx "An error occurred: This runner's configuration has already been used" "$T/r3-again.out" || fail "used JIT output: $(cat "$T/r3-again.out")"

step "crash CODE through the FIFO in online mode: that exit code, no process left behind"
echo "crash 3" >"$R3/_fake/control"
wait_exit "$RUN3"
[[ $RC == 3 ]] || fail "crash exit code: exit $RC"
group_gone "$RUN3"

step "a runner deleted through the API: run.sh exits 1"
api POST /orgs/acme/actions/runners/generate-jitconfig "token $PAT" '{"name":"jit-3","runner_group_id":1,"labels":["linux"]}'
JIT3=$(jstr "$BODY" encoded_jit_config)
ID3=$(sed -n 's/.*"runner":{"id":\([0-9]*\).*/\1/p' <<<"$BODY")
R4=$T/r4
mkdir -p "$R4" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R4/"
setsid env --default-signal=INT "$R4/run.sh" --jitconfig "$JIT3" >"$T/r4-run.out" 2>&1 &
RUN4=$!
RUNNER_PIDS+=("$RUN4")
wait_for "$T/r4-run.out" ': Listening for Jobs$'
api DELETE "/orgs/acme/actions/runners/$ID3" "token $PAT"
expect 204 "delete the runner"
wait_exit "$RUN4"
[[ $RC == 1 ]] || fail "run.sh after its runner was deleted: exit $RC"
grep -q 'Runner registration has been deleted from server' "$T/r4-run.out" || fail "deleted output: $(cat "$T/r4-run.out")"
group_gone "$RUN4"

step "config.sh: a taken name, --replace, already configured, a bad remove token"
regtok() {
  api POST /orgs/acme/actions/runners/registration-token "Bearer $TOKEN"
  expect 201 "registration token"
  jstr "$BODY" token
}
R5=$T/r5 R6=$T/r6
mkdir -p "$R5" "$R6" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R5/" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R6/"
"$R5/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-5 --labels gpu --ephemeral --unattended >"$T/r5-config.out" 2>&1 ||
  { cat "$T/r5-config.out"; fail "config.sh vm-5"; }
rc=0
"$R6/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-5 --unattended >"$T/r6-config.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -qx 'A runner exists with the same name' "$T/r6-config.out" || fail "a taken name: exit $rc: $(cat "$T/r6-config.out")"
"$R6/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-5 --unattended --replace >"$T/r6-config.out" 2>&1 ||
  { cat "$T/r6-config.out"; fail "config.sh --replace"; }
rc=0
"$R6/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-6 --unattended >"$T/r6-again.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q '^Cannot configure the runner because it is already configured' "$T/r6-again.out" || fail "already configured: exit $rc"
rc=0
"$R6/config.sh" remove --token NOPE >"$T/r6-remove.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -qxF "Http response code: NotFound from 'POST $API/actions/runner-registration'" "$T/r6-remove.out" &&
  grep -qx 'Failed: Removing runner from the server' "$T/r6-remove.out" || fail "bad remove token: exit $rc: $(cat "$T/r6-remove.out")"
[[ -e $R6/.runner ]] || fail "a failed remove deleted .runner"
# vm-5 was replaced: its own remove finds nothing to delete on the server and still cleans up.
api POST /orgs/acme/actions/runners/remove-token "Bearer $TOKEN"
"$R5/config.sh" remove --token "$(jstr "$BODY" token)" >"$T/r5-remove.out" 2>&1 || fail "remove of a replaced runner"
grep -qx 'Does not exist. Skipping Removing runner from the server' "$T/r5-remove.out" && [[ ! -e $R5/.runner ]] || fail "remove of a replaced runner: $(cat "$T/r5-remove.out")"

step "config.sh --runnergroup: unknown, then added through the test API"
R7=$T/r7
mkdir -p "$R7" && cp "$FAKE_RUNNER"/{config.sh,run.sh} "$R7/"
rc=0
"$R7/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-7 --runnergroup gpu --unattended >"$T/r7-config.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -qx 'Could not find any self-hosted runner group named "gpu".' "$T/r7-config.out" || fail "unknown group: exit $rc: $(cat "$T/r7-config.out")"
standin POST /runner-groups '{"scope":"org:acme","name":"gpu"}'
expect 201 "add a runner group"
"$R7/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-7 --runnergroup gpu --unattended >"$T/r7-config.out" 2>&1 ||
  { cat "$T/r7-config.out"; fail "config.sh --runnergroup gpu"; }
standin GET /state
grep -q '"name":"vm-7"[^}]*"group_id":2,' <<<"$BODY" || fail "vm-7 not in group 2: $BODY"
api GET "/orgs/acme/actions/runner-groups?per_page=1" "Bearer $TOKEN"
grep -q '"total_count":2' <<<"$BODY" || fail "runner groups: $BODY"
[[ $(curl -sS --cacert "$CA" -H "User-Agent: s" -H "Authorization: Bearer $TOKEN" -o /dev/null -D - \
  "$API/orgs/acme/actions/runner-groups?per_page=1" | tr -d '\r' | sed -n 's/^link: //Ip') == \
  "<$API/orgs/acme/actions/runner-groups?per_page=1&page=2>; rel=\"next\", <$API/orgs/acme/actions/runner-groups?per_page=1&page=2>; rel=\"last\"" ]] ||
  fail "runner groups Link header"

step "an ephemeral config.sh runner: one job, then it exits and is gone; hang ignores SIGINT"
"$R5/config.sh" --url "$URL/acme" --token "$(regtok)" --name vm-5b --labels gpu --ephemeral --unattended >"$T/r5-config.out" 2>&1 ||
  { cat "$T/r5-config.out"; fail "config.sh vm-5b"; }
setsid env --default-signal=INT "$R5/run.sh" >"$T/r5-run.out" 2>&1 &
RUN5=$!
RUNNER_PIDS+=("$RUN5")
setsid env --default-signal=INT "$R6/run.sh" >"$T/r6-run.out" 2>&1 &
RUN6=$!
RUNNER_PIDS+=("$RUN6")
wait_for "$T/r5-run.out" ': Listening for Jobs$'
wait_for "$T/r6-run.out" ': Listening for Jobs$'
echo hang >"$R6/_fake/control"
standin POST /jobs '{"name":"gpu-job","scope":"repo:acme/ml","labels":["self-hosted","GPU"]}'
JOB=$(jstr "$BODY" id)
wait_for "$T/r5-run.out" ': Running job: gpu-job$'
standin POST "/jobs/$JOB/finish" '{"result":"Succeeded"}'
wait_for "$T/r5-run.out" 'exiting because it is an ephemeral runner.$'
wait_exit "$RUN5"
[[ $RC == 0 ]] || fail "ephemeral config.sh runner: exit $RC"
standin GET /state
! grep -q '"name":"vm-5b"' <<<"$BODY" || fail "vm-5b still registered: $BODY"
kill -INT -- "-$RUN6"
sleep 0.5  # a hung runner must still be there: nothing to wait for but time
kill -0 "$RUN6" 2>/dev/null || fail "a hung run.sh stopped on SIGINT"
! grep -q '^Exiting' "$T/r6-run.out" || fail "a hung run.sh printed Exiting"
kill -KILL -- "-$RUN6"
wait_exit "$RUN6"
OLD6=$RUN6

step "run.sh again at once after a SIGKILL: waits out the old session (--session-idle 3s), then listens"
setsid env --default-signal=INT "$R6/run.sh" >"$T/r6-run2.out" 2>&1 &
RUN6=$!
RUNNER_PIDS+=("$RUN6")
wait_for "$T/r6-run2.out" ': Listening for Jobs$'
grep -q ': A session for this runner already exists.$' "$T/r6-run2.out" || fail "no session conflict: $(cat "$T/r6-run2.out")"
group_gone "$OLD6"
kill -INT -- "-$RUN6"
wait_exit "$RUN6"
[[ $RC == 0 ]] || fail "run.sh after SIGINT: exit $RC"

step "no secret in any output or the stand-in's log"
standin GET /secrets
secrets=$(sed 's/^{"secrets":\[//; s/\]}$//' <<<"$BODY" | tr ',' '\n' | sed 's/^"//; s/"$//')
n=0
for s in $secrets; do
  n=$((n + 1))
  for f in "$T"/*.out "$T/gs/standin.log"; do
    ! grep -qF -- "$s" "$f" || fail "a secret leaked into $f"
  done
done
((n >= 8)) || fail "only $n secrets listed"

step "show"
"$BIN" show --dir "$T/gs" >"$T/show.txt"
grep -q '^RUNNERS' "$T/show.txt" && grep -q 'jit-2' "$T/show.txt" && grep -q '^JOBS (3)' "$T/show.txt" || { cat "$T/show.txt"; fail "show"; }

echo "smoke: OK"
