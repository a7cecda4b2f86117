#!/usr/bin/env bash
# Static resource budget of every CUDA kernel: registers, spills, stack and shared memory per
# kernel for sm_80 and sm_90, from ptxas (--resource-usage). Fails when a kernel spills registers
# to local memory (the CMake build fails on that too, through ptxas -warn-spills -Werror; this
# prints the whole table). Usage: scripts/check_kernel_resources.sh [nvcc]
set -euo pipefail
cd "$(dirname "$0")/.."
nvcc=${1:-${CUDACXX:-/usr/local/cuda/bin/nvcc}}
[ -x "$nvcc" ] || { echo "check_kernel_resources: no nvcc at $nvcc" >&2; exit 1; }

# The kernel families, from their one list in kernels/CMakeLists.txt.
families=$(sed -n '/^set(MINIVLM_KERNEL_FAMILIES/,/)/p' kernels/CMakeLists.txt |
  sed -e 's/set(MINIVLM_KERNEL_FAMILIES//' -e 's/)//')
[ -n "$families" ] || { echo "check_kernel_resources: no families in kernels/CMakeLists.txt" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/ptxas.log
for family in $families; do
  echo "#include \"kernels/$family.cuh\"" >"$tmp/$family.cu"
  "$nvcc" -std=c++20 -I. --Werror=all-warnings -gencode arch=compute_80,code=sm_80 \
    -gencode arch=compute_90,code=sm_90 --resource-usage -c "$tmp/$family.cu" -o /dev/null 2>>"$log"
done

# ptxas prints, per kernel and architecture: the entry name, then its stack and spill bytes, then
# its registers and shared memory.
demangle() { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
awk '
  /Compiling entry function/ { split($0, q, "'"'"'"); name = q[2]; arch = q[4] }
  /bytes stack frame/ { stack = $1; stores = $5; loads = $9 }
  /Used [0-9]+ registers/ {
    regs = $5; smem = 0
    if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
    printf "%-6s %4s regs %6s B smem %5s B stack %5s/%-5s B spilled  %s\n", arch, regs, smem, \
           stack, stores, loads, name
    if (stores + loads > 0) spilled++
  }
  END {
    if (spilled) { printf "%d kernel(s) spill registers\n", spilled; exit 1 }
    print "no kernel spills registers"
  }' "$log" | demangle | sed -e 's/void minivlm::kernels::gpu:://' -e 's/(.*$//'
