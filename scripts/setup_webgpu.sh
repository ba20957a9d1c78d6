#!/usr/bin/env bash
# Installs a WebGPU adapter for a GPU-less Debian 12 (bookworm) machine: Mesa's lavapipe (Vulkan on
# the CPU) from bookworm-backports. Run as root; used by .ci/run and by developers once.
# -t bookworm-backports matters: bookworm's own Mesa 22.3.6 lacks a Vulkan feature Dawn needs, and
# Dawn then silently falls back to its "null" backend (see src/backend/webgpu/device.ts).
set -euo pipefail
if [ ! -f /etc/apt/sources.list.d/backports.sources ]; then
  cat > /etc/apt/sources.list.d/backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers
