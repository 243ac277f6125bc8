#!/usr/bin/env bash
# Rewrites go.mod/go.sum here for another Kubernetes release: requires k8s.io/kubernetes
# VERSION and replaces each staging module it replaces with ./staging/... by the
# published v0.<minor>.<patch>. Usage: hack/cluster/tools/kube/regen.sh v1.34.4
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
v=${1:?usage: regen.sh v1.X.Y}
staging=v0.${v#v1.}
upstream=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[[ -f $upstream ]] || { echo "regen: could not fetch go.mod of k8s.io/kubernetes@$v" >&2; exit 1; }
go_line=$(awk '$1 == "go" { print; exit }' "$upstream")
godebug_line=$(awk '$1 == "godebug" { print; exit }' "$upstream")
{
  sed -n '1,4p' go.mod # the explanatory comment
  echo 'module miglet.dev/hack/cluster/tools/kube'
  echo
  echo "$go_line"
  echo
  [[ -n $godebug_line ]] && { echo "$godebug_line"; echo; }
  echo 'tool ('
  echo '	k8s.io/kubernetes/cmd/kube-apiserver'
  echo '	k8s.io/kubernetes/cmd/kube-controller-manager'
  echo ')'
  echo
  echo "require k8s.io/kubernetes $v"
  echo
  echo 'replace ('
  awk -v s="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "\t" $1 " => " $1 " " s }' "$upstream"
  echo ')'
} > go.mod.new
mv go.mod.new go.mod
rm -f go.sum
go mod tidy
echo "regen: go.mod now pins k8s.io/kubernetes $v (staging $staging)"
