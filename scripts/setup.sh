#!/usr/bin/env bash
# Installs the system packages minivlm needs to build and test (Debian). Idempotent: installs only
# what is missing. Works as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libopenblas-openmp-dev    # CBLAS gemv and double GEMM for the CPU back-end (OpenMP threading)
  libdnnl-dev               # oneDNN: float GEMM for the CPU back-end (AVX-512 where present)
  libomp-dev                # OpenMP runtime headers (gcc uses libgomp; kept for clang builds)
  nlohmann-json3-dev        # JSON (configs, safetensors headers, JSONL)
  libstb-dev                # stb_image / stb_image_write
  libturbojpeg0-dev         # libjpeg-turbo's TurboJPEG API: JPEG decoding (Pillow's decoder)
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev # FFmpeg: video decoding
  libgtest-dev libgmock-dev # GoogleTest
  libopenmpi-dev openmpi-bin # MPI for data-parallel training
  libboost-context-dev      # fibers for the SIMT emulator
  clang-format
  clang-14 libclang-rt-14-dev # libFuzzer and the sanitizers of the fuzz targets (scripts/fuzz.sh)
  python3 python3-venv      # python3-venv: the .venv holding pyarrow (below)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Apache Arrow's C++ parquet reader (data/parquet_source.cpp) comes from PyPI's pyarrow wheel, in a
# virtual environment at the repository root (.venv, ignored by git); CMake finds it there.
install_pyarrow() {
  local root venv version=26.0.1
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  if [ -x "$venv/bin/python" ] &&
     "$venv/bin/python" -c "import pyarrow, sys; sys.exit(pyarrow.__version__ != '$version')" 2>/dev/null; then
    echo "setup: pyarrow $version present in $venv"
    return
  fi
  echo "setup: installing pyarrow==$version into $venv"
  if ! { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } ||
     ! "$venv/bin/pip" install -q "pyarrow==$version"; then
    echo "setup: could not install pyarrow into $venv; minivlm builds without it, but cannot" \
         "read .parquet datasets (and their tests are skipped)" >&2
    exit 1
  fi
}

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#packages[@]} system packages present"
  install_pyarrow
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_pyarrow
