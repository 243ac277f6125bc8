#!/usr/bin/env bash
# Makes miglet's self-contained bundle: one folder that runs on any x86_64 Linux, whatever C
# library it has (or none), because it carries its own loader and every shared library:
#   OUT/bin/miglet        a static launcher (agent/bundle/launcher.c)
#   OUT/libexec/miglet    the agent, stripped of debug info
#   OUT/lib/ld.so + lib*  the loader and the libraries `ldd` lists for it
#   OUT/share/miglet.service   a systemd unit for VMs (unpacked into /opt/miglet)
#   OUT/VERSION
# The agent image carries it as /opt/miglet; `miglet --install DIR` copies it (the pod
# provider's init container); --tar FILE also packs it as miglet/ for VMs.
# Usage: hack/images/bundle.sh BUILD_DIR OUT_DIR [--tar FILE]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

(($# == 2 || $# == 4)) || { sed -n '2,12p' "$0" >&2; exit 2; }
build=$1 out=$2 tar=""
if (($# == 4)); then
  [[ $3 == --tar ]] || { echo "bundle: unknown argument $3" >&2; exit 2; }
  tar=$4
fi
agent=$build/agent/miglet
[[ -x $agent ]] || { echo "bundle: no agent at $agent (build it first: make build)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/bin" "$out/libexec" "$out/lib" "$out/share"
objcopy --strip-debug "$agent" "$out/libexec/miglet"
${CC:-cc} -static -O2 -Wall -Wextra -Werror -o "$out/bin/miglet" "$ROOT/agent/bundle/launcher.c"
strip "$out/bin/miglet"

# ldd prints "libX.so.N => /path (0x...)" for each library and "/lib64/ld-linux-x86-64.so.2
# (0x...)" for the loader.
loader=""
while read -r line; do
  if [[ $line =~ ^([^[:space:]]+)\ =\>\ (/[^[:space:]]+) ]]; then
    cp -L "${BASH_REMATCH[2]}" "$out/lib/${BASH_REMATCH[1]}"
  elif [[ $line =~ ^(/[^[:space:]]+ld-linux[^[:space:]]*) ]]; then
    loader=${BASH_REMATCH[1]}
  elif [[ $line =~ "not found" ]]; then
    echo "bundle: $line" >&2
    exit 1
  fi
done < <(ldd "$out/libexec/miglet")
[[ -n $loader ]] || { echo "bundle: ldd named no loader for $agent" >&2; exit 1; }
cp -L "$loader" "$out/lib/ld.so"

cp "$HERE/miglet.service" "$out/share/miglet.service"
"$out/bin/miglet" --version | awk '{print $2}' >"$out/VERSION"

if [[ -n $tar ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -a "$out" "$tmp/miglet"
  tar -C "$tmp" --owner=0 --group=0 --numeric-owner -czf "$tar" miglet
fi
echo "bundle: $out ($(du -sh "$out" | cut -f1), $(ls "$out/lib" | wc -l) files in lib/)${tar:+; $tar}"
