#!/usr/bin/env bash
# Builds the GitHub stand-in into OUTDIR/github-standin, skipping the build when the sources
# (*.go, go.mod) have not changed since the last one (a stamp holds their hash).
#   tests/github-standin/build.sh OUTDIR
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
BIN=$OUT/github-standin
STAMP=$OUT/github-standin.stamp
hash=$(cd "$SRC" && sha256sum go.mod $(ls *.go | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)
if [[ -x $BIN && -f $STAMP && $(cat "$STAMP") == "$hash" ]]; then
  exit 0
fi
GO=$(command -v go || true)
[[ -n $GO || ! -x /usr/local/go/bin/go ]] || GO=/usr/local/go/bin/go
[[ -n $GO ]] || { echo "$0: no Go toolchain (go on PATH or /usr/local/go; Go 1.22 or newer)" >&2; exit 1; }
(cd "$SRC" && CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
echo "$hash" >"$STAMP"
