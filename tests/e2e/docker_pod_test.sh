#!/usr/bin/env bash
# A runner pod's life, acted out with the two images on a Docker network of their own, the way
# the pod provider builds the pod (operator/src/controllers/pod_builder.cc):
#   - the init container: the agent image runs `miglet --install /miglet` into a shared folder
#     that is world-writable like an emptyDir;
#   - the runner container: a runner image that has never seen miglet (tests/e2e/runner-image:
#     the fake runner laid out like actions-runner, uid 1001) runs /miglet/bin/miglet with the
#     pod's MIGLET_* environment and the folder mounted read-only;
#   - mig-controller (its image, hardened) takes the agent's stream by the container's name.
# Then: register_runner through the controller's HTTP API -> runner idle; a job -> job_running;
# `docker stop` (SIGTERM, as a pod deletion) during the job -> draining, the job finishes, the
# runner is removed (config.sh remove) and miglet exits 0.
# Where no Docker engine answers, says it is skipped and why (exit 77).
# Usage: docker_pod_test.sh <repo> [IMAGE_PREFIX]
set -uo pipefail
REPO=$1 PREFIX=${2:-ghcr.io/miglet}
source "$REPO/tests/e2e/images_lib.sh"

WORK=$(mktemp -d)
id=$$
RUNNER=miglet-docker-pod-test-runner:$id
net=miglet-pod-$id ctl=miglet-pod-controller-$id pod=miglet-pod-runner-$id
cleanup() {
  if ((failed)); then
    echo "--- controller log"; docker logs "$ctl" 2>&1 | tail -20
    echo "--- agent log"; docker logs "$pod" 2>&1 | tail -20
  fi
  docker rm -f "$ctl" "$pod" >/dev/null 2>&1
  docker network rm "$net" >/dev/null 2>&1
  docker rmi -f "$RUNNER" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

docker build -q -f "$REPO/tests/e2e/runner-image/Dockerfile" -t "$RUNNER" "$REPO" >/dev/null 2>"$WORK/err" ||
  { echo "FAIL building the runner image: $(tail -5 "$WORK/err")"; exit 1; }
docker network create "$net" >/dev/null || exit 1
docker run -d --name "$ctl" --network "$net" "${HARDENED[@]}" "$CONTROLLER" \
  --bind-address=0.0.0.0 --grpc-port=50051 --http-port=8080 --metrics-port=9090 >/dev/null || exit 1
api=http://$(ip_of "$ctl"):8080/api/v1/vms/pod-1
vm() {  # vm PYTHON-EXPR: the expression over the controller's view of pod-1 (d)
  curl -sf "$api" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
is() { [[ $(vm "$1") == "$2" ]]; }

# The init container.
mkdir -m 0777 "$WORK/miglet"
if out=$(docker run --rm "${HARDENED[@]}" -v "$WORK/miglet:/miglet" "$AGENT" \
  --install /miglet 2>&1); then
  ok "init container: $out"
else
  fail "init container: $out"; exit 1
fi

# The runner container, with the environment the pod builder gives it (a pool with the default
# drain timeout, 3600 s).
# The pod's projected service-account token (here a file; this controller checks no token).
mkdir -p "$WORK/token" && printf 'pod-token-for-the-test' >"$WORK/token/token"
docker run -d --name "$pod" --network "$net" -v "$WORK/miglet:/miglet:ro" \
  -v "$WORK/token:/var/run/secrets/miglet:ro" \
  -e MIGLET_CONTROLLER_AUTH_TYPE=bearer -e MIGLET_CONTROLLER_AUTH_TOKEN_PATH=/var/run/secrets/miglet/token \
  -e MIGLET_VM_ID=pod-1 -e MIGLET_POOL_ID=pool -e MIGLET_MODE=sidecar \
  -e MIGLET_CONTROLLER_GRPC_ENDPOINT="$ctl:50051" -e MIGLET_RUNNER_DIR=/home/runner \
  -e MIGLET_METRICS_LISTEN=0.0.0.0:9102 -e MIGLET_LOGGING_FORMAT=json \
  -e MIGLET_SHUTDOWN_GRACE_PERIOD=3600s -e MIGLET_SHUTDOWN_FORCE_AFTER=3615s --entrypoint /miglet/bin/miglet "$RUNNER" >/dev/null ||
  { fail "runner container did not start"; exit 1; }
if await 60 is "d['connected'] and d['miglet_state']" ready; then
  ok "the runner container's miglet (uid $(docker exec "$pod" id -u)) is connected and ready"
else
  fail "no ready agent pod-1: $(curl -s "$api")"; exit 1
fi

reg=$(curl -sf -X POST "$api/commands?wait=30s" -d '{"type":"register_runner",
  "bool_params":{"ephemeral":false},"string_params":{"runner_url":"https://github.com/acme",
  "registration_token":"registration-token","runner_name":"pod-1"}}')
[[ $reg == *'"success":true'* ]] && ok "register_runner: $reg" || fail "register_runner: $reg"
await 30 is "d['runner']['state']" idle && ok "runner idle" || fail "runner not idle: $(vm "d['runner']")"

docker exec "$pod" bash -c 'echo "job build" > /home/runner/_fake/control'
await 30 is "d['miglet_state'] + ' ' + d['current_job']['job_id']" "job_running build" &&
  ok "job build running" || fail "no running job: $(vm "d['miglet_state'], d['current_job']")"

docker stop -t 120 "$pod" >/dev/null &
stopper=$!
await 30 is "d['miglet_state']" draining && ok "SIGTERM during the job: draining" ||
  fail "not draining after SIGTERM: $(vm "d['miglet_state']")"
[[ $(docker inspect -f '{{.State.Running}}' "$pod") == true ]] && ok "the job is not killed" ||
  fail "the runner container stopped during the job"
docker exec "$pod" bash -c 'echo "finish Succeeded" > /home/runner/_fake/control'
wait "$stopper"
code=$(docker inspect -f '{{.State.ExitCode}}' "$pod")
[[ $code == 0 ]] && ok "the job finished and miglet exited 0" || fail "miglet exited $code"
# The controller logs each event's data in no fixed order.
events=$(docker logs "$ctl" 2>&1)
event() { grep "event $1 " <<<"$events" | grep -F "$2" | grep -qF "$3"; }
event job_completed result=Succeeded job_id=build &&
  ok "the controller got job_completed result=Succeeded" || fail "no job_completed Succeeded event"
event vm_shutting_down reason=SIGTERM deregistered=yes &&
  ok "the runner was deregistered before miglet exited" || fail "no deregistered shutdown event"
logs=$(docker logs "$pod" 2>&1)
[[ $logs != *registration-token* ]] && ok "the registration token is not in the agent's log" ||
  fail "the registration token is in the agent's log"
[[ $logs != *pod-token-for-the-test* ]] && ok "the pod's token is not in the agent's log" ||
  fail "the pod's token is in the agent's log"
exit $failed
