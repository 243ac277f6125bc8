#!/usr/bin/env bash
# Installs what building and testing miglet needs. Idempotent: a package already installed is
# not touched, and when all are there this costs a second and needs no network.
#   Debian packages: compiler, CMake/Ninja, the C++ libraries (TOOLCHAIN.md), clang-format,
#                    curl, prometheus (for promtool), python3-yaml (the deploy tests),
#                    busybox-static (the bundle test), debootstrap (make images),
#                    the one-node cluster's containerd, runc, CNI plugins, nftables, iptables
#   Go tools (from the Go module proxy, into build/tools/bin): grpcurl
#   --fuzz: clang and libFuzzer's runtime (clang, libclang-rt-14-dev) for `make fuzz` only
#   --build-only: only what building the two programs needs (the images' build stage)
# Usage: scripts/install-deps.sh [--apt-only|--go-only|--fuzz|--build-only]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TOOLS_BIN=${MIGLET_TOOLS_DIR:-$ROOT/build/tools}/bin

# What building mig-controller and miglet needs (the images' build stage installs only these:
# scripts/install-deps.sh --build-only)...
BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config make binutils
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcpprest-dev libyaml-cpp-dev prometheus-cpp-dev libspdlog-dev
  libabsl-dev libssl-dev nlohmann-json3-dev
)
# ...and what the tests, the tools and `make images` need besides.
APT_PACKAGES=(
  "${BUILD_PACKAGES[@]}"
  libgtest-dev libgmock-dev
  clang-format curl ca-certificates procps iproute2 prometheus
  openssl python3-yaml busybox-static debootstrap
  containerd runc containernetworking-plugins nftables iptables
)
# Only `make fuzz` needs these (about 250 MB with LLVM); the default install stays without them.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
# Go tools: name, module path of the main package, version.
GO_TOOLS=(
  "grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl v1.9.4"
)

apt_deps() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    echo "deps: Debian packages present"
    return
  fi
  echo "deps: installing ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

go_bin() {
  if command -v go >/dev/null; then echo go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else echo "deps: no Go toolchain found (needed to build ${GO_TOOLS[*]%% *})" >&2; exit 1
  fi
}

go_deps() {
  mkdir -p "$TOOLS_BIN"
  local go
  go=$(go_bin)
  for spec in "${GO_TOOLS[@]}"; do
    read -r name pkg version <<<"$spec"
    local stamp="$TOOLS_BIN/.$name.version"
    if [[ -x $TOOLS_BIN/$name && $(cat "$stamp" 2>/dev/null) == "$version" ]]; then
      echo "deps: $name $version present"
      continue
    fi
    echo "deps: building $name $version from the Go module proxy"
    GOBIN=$TOOLS_BIN CGO_ENABLED=0 GOFLAGS=-trimpath "$go" install -ldflags='-s -w' "$pkg@$version"
    echo "$version" >"$stamp"
  done
}

case ${1:-} in
  --apt-only) apt_deps "${APT_PACKAGES[@]}" ;;
  --go-only) go_deps ;;
  --build-only) apt_deps "${BUILD_PACKAGES[@]}" ;;
  --fuzz) apt_deps "${APT_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}" ;;
  "") apt_deps "${APT_PACKAGES[@]}"; go_deps ;;
  *) echo "usage: $0 [--apt-only|--go-only|--fuzz|--build-only]" >&2; exit 2 ;;
esac
