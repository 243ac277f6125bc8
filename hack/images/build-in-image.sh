#!/usr/bin/env bash
# The Dockerfiles' build stage (the same step in both, so Docker builds it once for the two):
# builds mig-controller and miglet from SRC and writes into OUT
#   mig-controller       stripped of debug info
#   miglet/              the agent's self-contained bundle (hack/images/bundle.sh)
#   runtime-packages     the Debian packages (name=version) mig-controller's libraries come from,
#                        which the controller image installs and nothing else
# Usage: build-in-image.sh SRC OUT
set -euo pipefail
src=$1 out=$2
build=$(mktemp -d)
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMIGLET_BUILD_TESTS=OFF -DMIGLET_BUILD_BENCH=OFF
cmake --build "$build" -j "${JOBS:-2}" --target mig-controller miglet
mkdir -p "$out"
objcopy --strip-debug "$build/operator/mig-controller" "$out/mig-controller"
"$src/hack/images/bundle.sh" "$build" "$out/miglet"

# ldd's libraries -> the packages that own them (dpkg knows a file by its /lib or /usr/lib path).
owner() {
  local f=$1 alt
  dpkg-query -S "$f" 2>/dev/null && return
  alt=$(readlink -f "$f")
  dpkg-query -S "$alt" 2>/dev/null && return
  case $alt in /usr/lib/*) dpkg-query -S "${alt#/usr}" 2>/dev/null && return ;; esac
  echo "build-in-image: no Debian package owns $f" >&2
  return 1
}
ldd "$out/mig-controller" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
  while read -r lib; do owner "$lib"; done | cut -d: -f1 | sort -u |
  xargs dpkg-query -W -f '${Package}=${Version}\n' >"$out/runtime-packages"
echo "build-in-image: $(wc -l <"$out/runtime-packages") runtime packages for mig-controller"
rm -rf "$build"
