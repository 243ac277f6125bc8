#!/usr/bin/env bash
# Builds the real control-plane binaries the tests run against, from the Go module
# proxy, at the versions pinned in hack/cluster/tools/*/go.mod (+ go.sum):
#   kube  -> kube-apiserver, kube-controller-manager   (k8s.io/kubernetes)
#   etcd  -> etcd, etcdctl                              (go.etcd.io/etcd/{server,etcdctl}/v3)
#   helm  -> helm                                       (helm.sh/helm/v3)
#   node  -> kubelet, kube-scheduler, kube-proxy        (k8s.io/kubernetes, as kube; only
#            when named: the one-node cluster of design/local-cluster.md)
#   crictl -> crictl                                    (sigs.k8s.io/cri-tools; only when named)
#   coredns -> coredns                                  (github.com/coredns/coredns; only when named)
# into <repo>/build/tools/bin. A group whose stamp matches its go.mod, go.sum, this
# recipe and the Go version is skipped, so a second run takes a second or two.
#
# Usage: hack/cluster/build-tools.sh [--force] [kube] [etcd] [helm] [node] [crictl] [coredns]
#        (default: kube etcd helm)
# Env:   MIGLET_TOOLS_DIR   output dir (default <repo>/build/tools; binaries in bin/)
#        MIGLET_TOOLS_JOBS  go build -p (default: number of cores)
#        MIGLET_TOOLS_NICE  nice level for the compiler (default 0)
#        GO                 go binary (default: go on PATH, else /usr/local/go/bin/go)
#        GOCACHE/GOMODCACHE as usual; keep them between runs to make rebuilds cheap.
set -euo pipefail
shopt -s inherit_errexit

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOLS_DIR=${MIGLET_TOOLS_DIR:-$ROOT/build/tools}
BIN=$TOOLS_DIR/bin
STAMPS=$TOOLS_DIR/stamps
JOBS=${MIGLET_TOOLS_JOBS:-$(nproc)}
NICE=${MIGLET_TOOLS_NICE:-0}
# Bump when the way the binaries are built changes (flags, ldflags), to force a rebuild.
RECIPE=1

if [[ -z ${GO:-} ]]; then
  if command -v go >/dev/null; then GO=go; else GO=/usr/local/go/bin/go; fi
fi
command -v "$GO" >/dev/null || { echo "build-tools: no Go toolchain (set GO=...)" >&2; exit 1; }

force=0
groups=()
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    kube|etcd|helm|node|crictl|coredns) groups+=("$arg") ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "build-tools: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
((${#groups[@]})) || groups=(kube etcd helm)

# Static binaries like upstream's release builds; -trimpath and -s -w keep them small
# and independent of where the module cache lives. -mod=readonly: go.sum is the pin.
export CGO_ENABLED=0
GOFLAGS="$("$GO" env GOFLAGS) -trimpath -mod=readonly"
export GOFLAGS
go_version=$("$GO" env GOVERSION)

# Version of a module as required by the go.mod in the current directory.
mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }
                              $1 == "require" && $2 == m { print $3; exit }' go.mod; }

binaries_of() {
  case $1 in
    kube) echo kube-apiserver kube-controller-manager ;;
    etcd) echo etcd etcdctl ;;
    helm) echo helm ;;
    node) echo kubelet kube-scheduler kube-proxy ;;
    crictl) echo crictl ;;
    coredns) echo coredns ;;
  esac
}

stamp_key() {
  (cd "$HERE/tools/$1" && sha256sum go.mod go.sum | sha256sum | cut -c1-16)
  echo "recipe=$RECIPE $go_version"
}

up_to_date() {
  local group=$1 b
  [[ -f $STAMPS/$group ]] || return 1
  for b in $(binaries_of "$group"); do [[ -x $BIN/$b ]] || return 1; done
  [[ "$(head -n2 "$STAMPS/$group")" == "$(stamp_key "$group")" ]]
}

gobuild() {
  nice -n "$NICE" "$GO" build -p "$JOBS" "$@"
}

# What hack/lib/version.sh sets for a release build, so `kubectl version` and the binaries'
# /version report the real version instead of v0.0.0-master.
kube_ldflags() {
  local v minor ld pkg
  v=$(mod_version k8s.io/kubernetes)
  minor=${v#v1.}; minor=${minor%%.*}
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$ld"
}

build_kube() {
  gobuild -ldflags "$(kube_ldflags)" -o "$1/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  echo "k8s.io/kubernetes $(mod_version k8s.io/kubernetes)"
}

build_node() {
  gobuild -ldflags "$(kube_ldflags)" -o "$1/" k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
  echo "k8s.io/kubernetes $(mod_version k8s.io/kubernetes)"
}

build_crictl() {
  local v
  v=$(mod_version sigs.k8s.io/cri-tools)
  gobuild -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" -o "$1/crictl" \
    sigs.k8s.io/cri-tools/cmd/crictl
  echo "sigs.k8s.io/cri-tools $v"
}

build_coredns() {
  gobuild -ldflags "-s -w" -o "$1/coredns" github.com/coredns/coredns
  echo "github.com/coredns/coredns $(mod_version github.com/coredns/coredns)"
}

build_etcd() {
  gobuild -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3
  gobuild -ldflags "-s -w" -o "$1/etcdctl" go.etcd.io/etcd/etcdctl/v3
  echo "go.etcd.io/etcd/server/v3 $(mod_version go.etcd.io/etcd/server/v3)"
  echo "go.etcd.io/etcd/etcdctl/v3 $(mod_version go.etcd.io/etcd/etcdctl/v3)"
}

build_helm() {
  local v kv minor
  v=$(mod_version helm.sh/helm/v3)
  # helm's Makefile derives the default .Capabilities.KubeVersion from client-go.
  kv=$("$GO" list -m -f '{{.Version}}' k8s.io/client-go)
  minor=${kv#v0.}; minor=${minor%%.*}
  gobuild -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v
    -X helm.sh/helm/v3/internal/version.gitTreeState=clean
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    -o "$1/helm" helm.sh/helm/v3/cmd/helm
  echo "helm.sh/helm/v3 $v"
}

mkdir -p "$BIN" "$STAMPS"
for group in "${groups[@]}"; do
  if ((!force)) && up_to_date "$group"; then
    echo "build-tools: $group up to date ($(sed -n '3,$p' "$STAMPS/$group" | paste -sd' '))"
    continue
  fi
  echo "build-tools: building $group with $go_version (-p $JOBS, nice $NICE) ..."
  start=$SECONDS
  tmp=$(mktemp -d "$TOOLS_DIR/.build-$group.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  versions=$(cd "$HERE/tools/$group" && "build_$group" "$tmp")
  for b in $(binaries_of "$group"); do mv -f "$tmp/$b" "$BIN/$b"; done
  rm -rf "$tmp"
  trap - EXIT
  { stamp_key "$group"; echo "$versions"; } > "$STAMPS/$group"
  echo "build-tools: built $group in $((SECONDS - start))s: $(echo "$versions" | paste -sd' ')"
done
echo "build-tools: binaries in $BIN"
