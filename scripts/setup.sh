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
  libcpp-httplib-dev        # cpp-httplib: the HTTP server of `minivlm serve`
  chromium chromium-driver  # headless Chromium (and its WebDriver) for the chat page's test
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev # FFmpeg: video decoding
  libgtest-dev libgmock-dev # GoogleTest
  libopenmpi-dev openmpi-bin # MPI for data-parallel training
  libboost-context-dev      # fibers for the SIMT emulator
  clang-format
  clang-14 libclang-rt-14-dev # libFuzzer and the sanitizers of the fuzz targets (scripts/fuzz.sh)
  python3 python3-venv      # python3-venv: the .venv holding pyarrow, openai, selenium (below)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Python packages, in a virtual environment at the repository root (.venv, ignored by git):
# - pyarrow: Apache Arrow's C++ parquet reader (data/parquet_source.cpp) comes from its wheel;
#   CMake finds it there;
# - openai and selenium: the serve tests (tests/serve/) drive `minivlm serve` with the official
#   OpenAI client and the chat page in headless Chromium.
python_packages=(pyarrow==26.0.1 openai==3.51.0 selenium==4.51.0)
install_python_packages() {
  local root venv
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" - "${python_packages[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
    echo "setup: ${python_packages[*]} present in $venv"
    return
  fi
  echo "setup: installing ${python_packages[*]} into $venv"
  if ! { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } ||
     ! "$venv/bin/pip" install -q "${python_packages[@]}"; then
    echo "setup: could not install ${python_packages[*]} into $venv" >&2
    exit 1
  fi
}

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#packages[@]} system packages present"
  install_python_packages
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
install_python_packages
