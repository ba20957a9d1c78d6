#!/usr/bin/env bash
# Packs what a lent GPU machine needs to run kiln's WebGPU bench, into .device/ (git-ignored;
# name it and wasm/build in the device tool's `carry`): Bun (xz), the runtime npm packages kiln
# imports (zod, @huggingface/*, the Dawn library of bun-webgpu-linux-x64) and the Vulkan loader .debs.
# Then on the device: `bash scripts/device/gpu_bench.sh` (see there). Run from the repo root after
# `npm install`. About 50 MB in all (the device tool carries at most 64 MiB with the tree).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .device && mkdir -p .device/debs
xz -T0 -6 -c node_modules/bun/bin/bun.exe > .device/bun.xz
tar -cJf .device/node_modules.tar.xz node_modules/zod node_modules/@huggingface node_modules/bun-webgpu-linux-x64
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial
apt-get $o update -qq
(cd .device/debs && apt-get $o download libvulkan1 >/dev/null)
du -sh .device
