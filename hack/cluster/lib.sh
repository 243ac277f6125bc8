# Shared by up.sh, down.sh and env.sh: where things live. Sourced, not run.
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this

MIGLET_CLUSTER_HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIGLET_REPO_ROOT=$(cd "$MIGLET_CLUSTER_HACK/../.." && pwd)
MIGLET_TOOLS_BIN=${MIGLET_TOOLS_DIR:-$MIGLET_REPO_ROOT/build/tools}/bin
CLUSTER_DIR=${MIGLET_CLUSTER_DIR:-$MIGLET_REPO_ROOT/build/cluster}

# Written by up.sh: MIGLET_ETCD_PORT, MIGLET_ETCD_PEER_PORT, MIGLET_APISERVER_PORT, MIGLET_KCM_PORT.
PORTS_FILE=$CLUSTER_DIR/ports.env
# down.sh deletes a state dir only if up.sh made it (this file is in it), never any other.
MARKER=$CLUSTER_DIR/.miglet-cluster
# Stop order; start order is the reverse.
COMPONENTS=(kube-controller-manager kube-apiserver etcd)

pid_file() { echo "$CLUSTER_DIR/run/$1.pid"; }

# Prints the pid of a component if it is running: the pid file names a live process
# that is still that binary (guards against a recycled pid).
running_pid() {
  local f pid exe
  f=$(pid_file "$1")
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ ${exe##*/} == "$1" || ${exe##*/} == "$1 (deleted)" ]] || return 1
  echo "$pid"
}

# The one-node cluster (up.sh --node; node.sh): fixed names and addresses, all inside
# 10.244.0.0/16 on the node's own bridge (design/local-cluster.md). One per machine.
NODE_NAME=miglet-node
NODE_BRIDGE=miglet0
NODE_IP=10.244.0.1
NODE_POD_CIDR=10.244.0.0/24
NODE_CLUSTER_CIDR=10.244.0.0/16
NODE_SERVICE_CIDR=10.244.128.0/24
NODE_SERVICE_IP=10.244.128.1
NODE_DNS_IP=10.244.128.10
# Images the node makes for itself (never pulled).
NODE_IMAGE_PREFIX=localhost/miglet-cluster
# Present when up.sh ran with --node: down.sh then takes the node down too.
NODE_MARKER=$CLUSTER_DIR/.miglet-node

# Issues PKI/NAME.{crt,key} signed by PKI/CA (once: an existing certificate is kept). up.sh and
# node.sh set PKI.
issue() { # ca name subject eku [subjectAltName]
  local ca=$1 name=$2 subj=$3 eku=$4 san=${5:-}
  [[ -s $PKI/$name.crt ]] && return
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    if [[ -n $san ]]; then echo "subjectAltName=$san"; fi
  } > "$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
  chmod 600 "$PKI/$name.key"
}
