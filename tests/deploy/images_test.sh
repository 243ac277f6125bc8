#!/usr/bin/env bash
# The two images `make images` built (ghcr.io/miglet/{mig-controller,miglet-agent}:VERSION):
# both run --help and --version as their numeric non-root user, the controller also with a
# read-only root filesystem, no capabilities and no privilege escalation (as the chart runs it);
# both carry their OCI labels and no build tools. The two run together on a Docker network of
# their own (the agent connects to the controller by name; /readyz and /metrics say so). The
# agent image's /opt/miglet is shown doing its three jobs:
#   (a) the pod provider's init container, `miglet --install /miglet` into a volume, whose copy
#       then runs in a root that holds busybox-static and nothing else;
#   (b) a runner image of one's own made with `COPY --from=` the agent image, here FROM scratch;
#   (c) the VM tarball is bundle_test's.
# Where no Docker engine answers, says it is skipped and why (exit 77).
# Usage: images_test.sh <repo> [IMAGE_PREFIX]
set -uo pipefail
REPO=$1 PREFIX=${2:-ghcr.io/miglet}
source "$REPO/tests/e2e/images_lib.sh"

WORK=$(mktemp -d)
mounts=() containers=() images=() networks=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  for i in "${images[@]}"; do docker rmi -f "$i" >/dev/null 2>&1; done
  for n in "${networks[@]}"; do docker network rm "$n" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
trap cleanup EXIT
check() {  # check NAME WANT-SUBSTRING COMMAND...   (the command must exit 0)
  local name=$1 want=$2 out; shift 2
  if out=$("$@" 2>&1) && [[ $out == *"$want"* ]]; then ok "$name"; else fail "$name: $out"; fi
}
inspect() { docker image inspect -f "$2" "$1"; }

check "controller --version" "mig-controller $VERSION" docker run --rm "${HARDENED[@]}" "$CONTROLLER" --version
check "controller --help (read-only root, no capabilities)" "--leader-elect" \
  docker run --rm "${HARDENED[@]}" "$CONTROLLER" --help
check "agent --version" "miglet $VERSION" docker run --rm "${HARDENED[@]}" "$AGENT" --version
check "agent --help" "--install=DIR" docker run --rm "${HARDENED[@]}" "$AGENT" --help

for i in "$CONTROLLER" "$AGENT"; do
  user=$(inspect "$i" '{{.Config.User}}')
  [[ $user == 65532:65532 ]] && ok "$i runs as 65532:65532" || fail "$i user: '$user'"
  entry=$(inspect "$i" '{{json .Config.Entrypoint}}')
  [[ $entry == '["/'* ]] && ok "$i entrypoint needs no shell: $entry" || fail "$i entrypoint: $entry"
  for l in title description version revision; do
    v=$(inspect "$i" "{{index .Config.Labels \"org.opencontainers.image.$l\"}}")
    [[ -n $v ]] || fail "$i has no label org.opencontainers.image.$l"
  done
  v=$(inspect "$i" '{{index .Config.Labels "org.opencontainers.image.version"}}')
  [[ $v == "$VERSION" ]] && ok "$i labels (version $v)" || fail "$i version label: $v"
done
# No compiler or build tool in either image.
for i in "$CONTROLLER" "$AGENT"; do
  c=$(docker create "$i") && containers+=("$c")
  docker export "$c" | tar -t >"$WORK/files"
  if grep -qE '^(usr/bin/(g\+\+|gcc|cc|cmake|ninja|make)|usr/include/grpcpp/)' "$WORK/files"; then
    fail "$i holds build tools: $(grep -E '^usr/bin/(g\+\+|gcc|cmake|ninja|make)' "$WORK/files" | head -3)"
  else
    ok "$i holds no compiler, cmake, ninja, make or headers"
  fi
done

# The two images working together on a network of their own, hardened as the chart runs them:
# the agent dials the controller by its container name, and the controller's HTTP API lists it
# connected; the agent's /metrics says so too.
net=miglet-images-test-$$
docker network create "$net" >/dev/null && networks+=("$net")
ctl=miglet-images-test-controller-$$ agent=miglet-images-test-agent-$$
docker run -d --name "$ctl" --network "$net" "${HARDENED[@]}" "$CONTROLLER" \
  --bind-address=0.0.0.0 --grpc-port=50051 --http-port=8080 --metrics-port=9090 >/dev/null &&
  containers+=("$ctl")
docker run -d --name "$agent" --network "$net" "${HARDENED[@]}" "$AGENT" --vm-id=image-vm \
  --pool-id=images --controller-grpc="$ctl:50051" --runner-dir=/tmp \
  --metrics-listen=0.0.0.0:9102 >/dev/null && containers+=("$agent")
connected() { curl -sf "http://$(ip_of "$ctl"):8080/api/v1/vms/image-vm" | grep -q '"connected":true'; }
if await 60 connected; then
  ok "the agent image's miglet connects to the controller image's mig-controller by name"
else
  fail "no connected agent: controller log: $(docker logs "$ctl" 2>&1 | tail -5) agent log: $(docker logs "$agent" 2>&1 | tail -5)"
fi
stream_up() { curl -sf "http://$(ip_of "$agent"):9102/metrics" | grep -q '^miglet_stream_connected 1'; }
await 30 stream_up && ok "the agent's /metrics: miglet_stream_connected 1" || fail "agent /metrics"
ready() { curl -sf "http://$(ip_of "$ctl"):8081/readyz"; }
await 30 ready && ok "the controller's /readyz answers 200" || fail "controller /readyz: $(curl -s "http://$(ip_of "$ctl"):8081/readyz")"

# (a) The init container: --install into a volume, then the copy runs in a bare root.
if [[ $(id -u) -eq 0 && -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; then
  R=$WORK/root
  mkdir -p "$R/bin" "$R/proc" "$R/miglet"
  cp /bin/busybox "$R/bin/busybox"
  chown 65532:65532 "$R/miglet"
  check "agent image: miglet --install /miglet into a volume" "installed in /miglet" \
    docker run --rm "${HARDENED[@]}" -v "$R/miglet:/miglet" "$AGENT" --install /miglet
  mount -t proc proc "$R/proc" && mounts+=("$R/proc")
  check "the installed copy runs where only busybox is" "miglet $VERSION" \
    chroot "$R" /bin/busybox env -i /miglet/bin/miglet --version
else
  echo "SKIPPED (a) in a bare root: needs root and busybox-static"
fi

# (b) A runner image of one's own: FROM scratch, busybox, and COPY --from= the agent image.
mkdir -p "$WORK/ctx"
cp /bin/busybox "$WORK/ctx/busybox" 2>/dev/null || true
if [[ -f $WORK/ctx/busybox ]]; then
  cat >"$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
COPY --from=$AGENT /opt/miglet /opt/miglet
ENTRYPOINT ["/opt/miglet/bin/miglet"]
DOCKERFILE
  tag=miglet-images-test-runner:$$
  if docker build -q -t "$tag" "$WORK/ctx" >/dev/null 2>"$WORK/err"; then
    images+=("$tag")
    check "COPY --from= the agent image into a FROM scratch runner image runs" "miglet $VERSION" \
      docker run --rm "$tag" --version
  else
    fail "docker build of a COPY --from runner image: $(tail -3 "$WORK/err")"
  fi
fi
exit $failed
