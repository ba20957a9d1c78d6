#!/usr/bin/env bash
# On a lent GPU machine (files from scripts/device/pack.sh carried as .device/): installs the
# Vulkan loader, unpacks Bun and the runtime packages, and writes to $OUT (default ./out):
#   kiln.jsonl   `bun run bench --backend webgpu --json` (matmul incl. 4096³, train_step/baby,
#                train_step/shakespeare_char, on the GPU through Dawn + Vulkan)
#   torch.jsonl  tests/bench/torch_reference.py on CUDA (torch.mm fp32 4096³, the same two steps)
#   info.txt     nvidia-smi, the Vulkan ICD used, versions
# The wasm kernels must be built (wasm/build/ is in the tree when `npm install` ran here; carry it).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
for f in .device/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
xz -dc .device/bun.xz > /tmp/bun && chmod +x /tmp/bun
tar -xJf .device/node_modules.tar.xz
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
{ nvidia-smi -L; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"; /tmp/bun --version; } > "$OUT/info.txt" 2>&1
timeout 420 /tmp/bun tests/bench/main.ts --backend webgpu --json --steps 20 2> "$OUT/kiln.err" | tee "$OUT/kiln.jsonl"
PYTHONUNBUFFERED=1 timeout 150 python3 tests/bench/torch_reference.py --device cuda --steps 20 2> "$OUT/torch.err" | tee "$OUT/torch.jsonl"
