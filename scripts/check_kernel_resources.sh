#!/usr/bin/env bash
# Static resource budget of every CUDA kernel: registers, spills, stack and shared memory per
# kernel for sm_80 and sm_90 (or $MINIVLM_RESOURCE_ARCHS, e.g. "90"), from ptxas
# (--resource-usage). Prints the whole table, then fails when a hot kernel spills registers to
# local memory: the kernels of a training or decode step (below). A spill elsewhere is reported,
# not fatal here (the CMake build refuses any spill through ptxas -warn-spills -Werror).
# Exit status 77 (ctest's skip) when there is no nvcc. Run by ctest as `kernel_resources`.
#   Usage: scripts/check_kernel_resources.sh [nvcc]
#          scripts/check_kernel_resources.sh --log PTXAS_LOG   (judge a saved ptxas log instead)
set -euo pipefail
cd "$(dirname "$0")/.."
given_log=
if [ "${1:-}" = "--log" ]; then
  given_log=${2:?--log needs a file}
  [ -r "$given_log" ] || { echo "check_kernel_resources: cannot read $given_log" >&2; exit 2; }
else
  nvcc=${1:-${CUDACXX:-/usr/local/cuda/bin/nvcc}}
  [ -x "$nvcc" ] || { echo "check_kernel_resources: no nvcc at $nvcc: skipped" >&2; exit 77; }
fi
archs=${MINIVLM_RESOURCE_ARCHS:-80 90}
case " $archs " in *" 90 "*) ;; *) echo "check_kernel_resources: sm_90 must be among the archs ($archs)" >&2; exit 2 ;; esac

# The hot kernels: every __global__ a bf16 training step or decode step launches (attention
# forward, backward and decode with their helpers, the norms, the element-wise ops around the
# GEMMs, the loss, the gradient norm and AdamW). Names as ptxas prints them, without template
# arguments; flash_* covers every attention kernel, SIMT or tensor-core.
hot_kernels='flash_* rmsnorm_forward_kernel rmsnorm_backward_kernel layernorm_forward_kernel
  layernorm_backward_kernel column_sum_kernel rope_kernel swiglu_forward_kernel
  swiglu_backward_kernel activation_forward_kernel activation_backward_kernel binary_kernel
  scale_kernel bias_add_kernel embedding_forward_kernel embedding_backward_kernel
  cross_entropy_kernel single_block_sum_kernel sum_squares_kernel adamw_kernel'

# The kernel families, from their one list in kernels/CMakeLists.txt.
families=$(sed -n '/^set(MINIVLM_KERNEL_FAMILIES/,/)/p' kernels/CMakeLists.txt |
  sed -e 's/set(MINIVLM_KERNEL_FAMILIES//' -e 's/)//')
[ -n "$families" ] || { echo "check_kernel_resources: no families in kernels/CMakeLists.txt" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/ptxas.log
if [ -n "$given_log" ]; then
  cp "$given_log" "$log"
else
  gencode=()
  for a in $archs; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
  for family in $families; do
    echo "#include \"kernels/$family.cuh\"" >"$tmp/$family.cu"
    "$nvcc" -std=c++20 -I. --Werror=all-warnings "${gencode[@]}" --resource-usage \
      -c "$tmp/$family.cu" -o /dev/null 2>>"$log"
  done
fi

# ptxas prints, per kernel and architecture: the entry name, then its stack and spill bytes, then
# its registers and shared memory. Demangled first, then one row per kernel and architecture.
demangle() { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
awk '
  /Compiling entry function/ { split($0, q, "'"'"'"); name = q[2]; arch = q[4] }
  /bytes stack frame/ { stack = $1; stores = $5; loads = $9 }
  /Used [0-9]+ registers/ {
    regs = $5; smem = 0
    if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", arch, regs, smem, stack, stores, loads, name
  }' "$log" | demangle >"$tmp/rows"

awk -F'\t' -v hot="$hot_kernels" '
  BEGIN { n = split(hot, h, /[ \n]+/) }
  function base(full,   s) {  # "void minivlm::kernels::gpu::rope_kernel<float>(...)" -> rope_kernel
    s = full; sub(/^void /, "", s); sub(/\(.*$/, "", s); sub(/<.*$/, "", s); sub(/^.*::/, "", s)
    return s
  }
  function is_hot(k,   i, p) {
    for (i = 1; i <= n; i++) {
      p = h[i]; if (p == "") continue
      if (p ~ /\*$/) { if (index(k, substr(p, 1, length(p) - 1)) == 1) return 1 }
      else if (k == p) return 1
    }
    return 0
  }
  {
    k = base($7); label = $7; sub(/^void minivlm::kernels::gpu::/, "", label); sub(/\(.*$/, "", label)
    hotk = is_hot(k); spill = $5 + $6
    printf "%-6s %-3s %4s regs %6s B smem %5s B stack %5s/%-5s B spilled  %s\n", $1, hotk ? "hot" : "", \
           $2, $3, $4, $5, $6, label
    if ($1 == "sm_90") seen90++
    if (hotk) hotcount++
    if (spill > 0 && hotk) hot_spills++
    else if (spill > 0) other_spills++
  }
  END {
    if (!seen90) { print "check_kernel_resources: no sm_90 kernel in the ptxas output"; exit 1 }
    if (!hotcount) { print "check_kernel_resources: no hot kernel found (names changed?)"; exit 1 }
    if (other_spills) printf "%d build(s) of kernels outside the hot set spill registers\n", other_spills
    if (hot_spills) { printf "%d hot kernel(s) spill registers\n", hot_spills; exit 1 }
    printf "no hot kernel spills registers (%d hot kernel builds checked)\n", hotcount
  }' "$tmp/rows"
