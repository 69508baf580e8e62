#!/usr/bin/env bash
# install-deps.sh: installs what the build and the test suite need on a fresh Debian machine (idempotent).
# Usage: scripts/install-deps.sh [--quick]   (--quick: only what scripts/test.sh --quick needs: cmake, a C compiler,
# make, pkg-config, cmocka and MPFR; cJSON is bundled in third_party/cjson)
set -euo pipefail
quick=0
[ "${1:-}" = "--quick" ] && quick=1
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
arch=$(dpkg --print-architecture) # with arm64 multiarch packages too, a bare name is ambiguous to dpkg -s
dpkg -s "libcmocka-dev:$arch" >/dev/null 2>&1 || need+=(libcmocka-dev)
# MPFR: the tests' exact cos/sin oracle settles its rare hard cases with it (native builds only; the arm64 cross
# build's tests run without it and count such cases as undecided).
dpkg -s "libmpfr-dev:$arch" >/dev/null 2>&1 || need+=(libmpfr-dev)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  [ $# -gt 0 ] || return 0
  echo "install-deps: installing $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ $quick = 1 ]; then
  apt_install "${need[@]}"
  exit 0
fi
command -v valgrind >/dev/null || need+=(valgrind)
command -v clang >/dev/null || need+=(clang)
# Doxygen: the API reference stage (docs/api/Doxyfile).
command -v doxygen >/dev/null || need+=(doxygen)
# OpenBLAS (optional for the library): the LLaMA decode-step example's QKV and O projections (cblas_sgemm).
dpkg -s "libopenblas-dev:$arch" >/dev/null 2>&1 || need+=(libopenblas-dev)
# On x86-64: the aarch64 cross compiler, qemu-user and arm64 cmocka (multiarch) for the NEON build's tests.
if [ "$(uname -m)" = x86_64 ] && [ "${ROTARY_SKIP_ARM:-0}" != 1 ]; then
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  if ! dpkg -s libcmocka-dev:arm64 >/dev/null 2>&1; then
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
    need+=(libcmocka-dev:arm64)
  fi
fi
apt_install "${need[@]}"
