#!/usr/bin/env bash
# On the GPU machine (the `run` tool), from the repository root: sets up Deno's WebGPU over Vulkan (the
# GL/EGL libraries from .gl/*.deb and Deno from .device/deno.xz where missing, the bundle that `npm run
# bench:deno-pack` made) and runs bench.js with the given arguments under a time limit, so that several
# runs fit in one call:
#
#   bash bench/deno/on-device.sh 110 --no-suite --models albert-base-random --tuning-ab '[{}, …]' --out $OUT/ab.json
#   bash bench/deno/on-device.sh 400 --budget-sec 320 --deadline-sec 390 --out $OUT/deno-gpu.json
#
# Carry [".gl", ".device", "node_modules/.cache/ponder-bench/deno.tar.xz"]; bench/README.md has the rest.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: bash bench/deno/on-device.sh SECONDS [bench.js arguments…]" >&2
  exit 2
fi
limit=$1
shift

bundle=node_modules/.cache/ponder-bench/deno.tar.xz
for needed in .device/deno.xz "$bundle"; do
  if [[ ! -f $needed ]]; then
    echo "on-device.sh: $needed is missing: carry it (and run npm run bench:deno-pack here first)" >&2
    exit 2
  fi
done
if ! compgen -G '.gl/*.deb' >/dev/null; then
  echo "on-device.sh: no .gl/*.deb to carry (../shared/docs/gpu-machine.md says which)" >&2
  exit 2
fi

# The GPU machine lacks the GL/EGL libraries that Deno's wgpu loads; a machine that has them (or got
# them from an earlier run) keeps its own.
if ! ldconfig -p | grep -q 'libEGL\.so\.1 '; then
  for deb in .gl/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
if [[ ! -x /tmp/deno || .device/deno.xz -nt /tmp/deno ]]; then
  xz -dc .device/deno.xz >/tmp/deno
  chmod +x /tmp/deno
fi
# The bundle every time (a second or so): a warm machine keeps /tmp between calls, and a bundle packed
# since must not run the old code.
rm -rf /tmp/pb
mkdir -p /tmp/pb
tar -C /tmp/pb -xJf "$bundle"
# The NVIDIA driver's Vulkan ICD there; set VK_DRIVER_FILES to try the script elsewhere (e.g. on lavapipe).
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}

# A run cut by the limit keeps what bench.js has written so far (it rewrites its JSON after every step);
# the script still fails with timeout's status, so a cut run is not mistaken for a finished one.
timeout "$limit" /tmp/deno run -A /tmp/pb/deno/bench.js "$@"
