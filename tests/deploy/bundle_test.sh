#!/usr/bin/env bash
# miglet's self-contained bundle (hack/images/bundle.sh) runs where none of the build's
# libraries are: in a chroot whose root holds busybox-static and nothing else (no libc, no
# loader). There, as the pod provider does, `miglet --install` copies it from /opt/miglet (the
# agent image's folder) into /miglet (the runner pod's volume), and the copy runs: --version,
# --help, --check-config of a good and of a bad config. The VM tarball unpacked into /opt of a
# second such root runs the same way and carries its systemd unit.
# Usage: bundle_test.sh <repo> <build-dir>      (exit 77: skipped, and says why)
set -uo pipefail
REPO=$1 BUILD=$2
skip() { echo "SKIPPED: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "chroot needs root"
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || skip "no $BUSYBOX (Debian's busybox-static; make deps installs it)"
ldd "$BUSYBOX" >/dev/null 2>&1 && skip "$BUSYBOX is not static (install busybox-static)"
ldd "$BUILD/agent/miglet" 2>/dev/null | grep -qE 'lib(a|t|ub)san' &&
  skip "a sanitizer build: the bundle ships from the plain build, where this test runs"

WORK=$(mktemp -d)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
failed=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

"$REPO/hack/images/bundle.sh" "$BUILD" "$WORK/bundle" --tar "$WORK/miglet.tar.gz" || exit 1

# A root with busybox alone (and /proc, which sanitizer builds read).
make_root() {
  mkdir -p "$1/bin" "$1/proc" "$1/tmp"
  cp "$BUSYBOX" "$1/bin/busybox"
  mount -t proc proc "$1/proc" && mounts+=("$1/proc")
}
in_root() { local r=$1; shift; chroot "$r" /bin/busybox env -i "$@"; }

R=$WORK/root
make_root "$R"
mkdir -p "$R/opt"
cp -a "$WORK/bundle" "$R/opt/miglet"
outside=$(find "$R" -path "$R/opt" -prune -o -path "$R/proc" -prune -o -type f -print | sort)
if [[ $outside == "$R/bin/busybox" ]]; then
  ok "the root holds only /bin/busybox besides the bundle (no libc, no loader)"
else
  fail "the root holds more than busybox: $outside"
fi

if out=$(in_root "$R" /opt/miglet/bin/miglet --install /miglet 2>&1) &&
  [[ $out == *"installed in /miglet"* ]]; then
  ok "miglet --install /miglet: $out"
else
  fail "miglet --install /miglet: $out"
fi
if diff -r "$R/opt/miglet" "$R/miglet" >/dev/null; then
  ok "/miglet is a copy of the bundle"
else
  fail "/miglet differs from /opt/miglet"
fi

version=$(cat "$WORK/bundle/VERSION")
out=$(in_root "$R" /miglet/bin/miglet --version 2>&1)
[[ $out == "miglet $version" ]] && ok "--version: $out" || fail "--version: $out"
out=$(in_root "$R" /miglet/bin/miglet --help 2>&1)
[[ $out == *"--install=DIR"* && $out == *"--check-config"* ]] && ok "--help lists the flags" ||
  fail "--help: $out"

cat >"$R/tmp/good.yaml" <<'YAML'
vm_id: vm-1
pool_id: pool-a
controller:
  grpc_endpoint: controller:50051
runner:
  dir: /tmp
YAML
out=$(in_root "$R" /miglet/bin/miglet --config=/tmp/good.yaml --check-config 2>&1)
[[ $? -eq 0 && $out == *"vm-1"* ]] && ok "--check-config of a good config" ||
  fail "--check-config of a good config: $out"
printf 'vm_id: vm-1\nheartbeat:\n  interval: soon\n' >"$R/tmp/bad.yaml"
out=$(in_root "$R" /miglet/bin/miglet --config=/tmp/bad.yaml --check-config 2>&1)
code=$?
[[ $code -eq 2 && $out == *"heartbeat.interval"* && $out == *"bad.yaml:3:"* ]] &&
  ok "a bad config exits 2 naming the key and line: $out" ||
  fail "a bad config: exit $code: $out"

# The runner does not inherit the launcher's MIGLET_BUNDLE_DIR (nor --library-path).
out=$(in_root "$R" MIGLET_BUNDLE_DIR=/elsewhere /miglet/bin/miglet --install /miglet2 2>&1)
[[ $? -eq 0 && -x $R/miglet2/libexec/miglet ]] && ok "the launcher sets MIGLET_BUNDLE_DIR itself" ||
  fail "install with a stale MIGLET_BUNDLE_DIR: $out"

# The VM tarball: miglet/ unpacked into /opt of a second bare root.
V=$WORK/vm
make_root "$V"
mkdir -p "$V/opt"
tar -C "$V/opt" -xzf "$WORK/miglet.tar.gz" || fail "the tarball does not unpack"
out=$(in_root "$V" /opt/miglet/bin/miglet --version 2>&1)
[[ $out == "miglet $version" ]] && ok "the tarball's miglet runs: $out" || fail "tarball --version: $out"
unit=$V/opt/miglet/share/miglet.service
if grep -q '^ExecStart=/opt/miglet/bin/miglet --config=/etc/miglet/miglet.yaml$' "$unit"; then
  ok "the tarball carries its systemd unit"
else
  fail "no unit with ExecStart=/opt/miglet/bin/miglet in $unit"
fi
owners=$(tar -tvzf "$WORK/miglet.tar.gz" | awk '{print $2}' | sort -u)
[[ $owners == "0/0" ]] && ok "the tarball's files belong to root" || fail "tarball owners: $owners"

exit $failed
