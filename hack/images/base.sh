#!/usr/bin/env bash
# Makes the Dockerfiles' base images locally, for a Docker engine that can pull nothing (no
# registry here): debian:bookworm from `debootstrap --variant=minbase bookworm` and
# debian:bookworm-slim from the same root without docs, man pages and locales (as Docker's
# official -slim drops them), each `docker import`ed under the tag the Dockerfiles' FROM names.
# So the Dockerfiles stay standard: on a machine with a registry they pull the real ones. An
# image already there is kept (--force remakes both).
# Env: DEBIAN_MIRROR (default: deb.debian.org/debian), MIGLET_BASE_CACHE (the root, cached)
set -euo pipefail
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${MIGLET_BASE_CACHE:-/var/cache/miglet/bookworm-rootfs}
force=0
[[ ${1:-} == --force ]] && force=1

have() { docker image inspect "$1" >/dev/null 2>&1; }
if ((!force)) && have debian:bookworm && have debian:bookworm-slim; then
  echo "base: debian:bookworm and debian:bookworm-slim present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base: no debootstrap (make deps installs it)" >&2; exit 1; }

if [[ ! -f $CACHE/.complete ]] || ((force)); then
  rm -rf "$CACHE"
  mkdir -p "$CACHE"
  echo "base: debootstrap --variant=minbase bookworm from $MIRROR (about a minute)"
  debootstrap --variant=minbase bookworm "$CACHE" "$MIRROR" >"$CACHE.log" 2>&1 ||
    { tail -20 "$CACHE.log" >&2; exit 1; }
  # As Docker's debian images: the archive and its security and updates suites, no apt caches.
  cat >"$CACHE/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
SOURCES
  rm -rf "$CACHE"/var/lib/apt/lists/* "$CACHE"/var/cache/apt/*.bin "$CACHE"/var/cache/apt/archives/*.deb
  touch "$CACHE/.complete"
fi

import() {  # import TAG DIR
  tar --numeric-owner --exclude=./.complete -C "$2" -c . |
    docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$1" >/dev/null
  echo "base: $1 ($(docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%d MB", $1/1e6}'))"
}
import debian:bookworm "$CACHE"

slim=$(mktemp -d)
trap 'rm -rf "$slim"' EXIT
cp -a "$CACHE/." "$slim/"
rm -rf "$slim"/usr/share/doc/* "$slim"/usr/share/man/* "$slim"/usr/share/info/* \
  "$slim"/usr/share/locale/* "$slim"/usr/share/lintian/*
# Keep them out of later installs too, as the official slim images do.
cat >"$slim/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
import debian:bookworm-slim "$slim"
