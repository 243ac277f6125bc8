# Sourced by the tests of the two images (tests/deploy/images_test.sh, tests/e2e/docker_pod_test.sh)
# after REPO and PREFIX are set: skips (exit 77, saying why) where no Docker engine answers, fails
# where `make images` has not built the images, and gives the helpers both use.
skip() { echo "SKIPPED: $*"; exit 77; }
command -v docker >/dev/null || skip "no docker command"
docker info >/dev/null 2>&1 || skip "no Docker engine answers (docker info: $(docker info 2>&1 | tail -1))"
VERSION=$(sed -n 's/^constexpr char kVersion\[\] = "\(.*\)";/\1/p' "$REPO/agent/cmd/main.cc")
CONTROLLER=$PREFIX/mig-controller:$VERSION AGENT=$PREFIX/miglet-agent:$VERSION
for i in "$CONTROLLER" "$AGENT"; do
  docker image inspect "$i" >/dev/null 2>&1 || { echo "FAIL no image $i (make images builds it)"; exit 1; }
done
# As the chart runs mig-controller (and as the pod provider's init container runs miglet).
HARDENED=(--read-only --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges)

failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }
await() {  # await SECONDS COMMAND...: until the command succeeds, or false after SECONDS
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || return 1; sleep 0.2; done
}
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
