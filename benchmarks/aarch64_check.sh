#!/usr/bin/env bash
# The shipped bundles on LiteRT's aarch64 wheel, without a Raspberry Pi: an arm64 Python 3.11 (Debian 12's, as
# on Raspberry Pi OS Bookworm) with the aarch64 wheels of the runtime dependencies, run under qemu-user
# with a Pi's CPU model (QEMU_CPU: cortex-a72 for a Pi 4, cortex-a76 for a Pi 5). Runs `lpr-sdk selftest`, then,
# when ../shared/data is there, `lpr-sdk evaluate` of cn and latin on the test crops (int8 kernels are emulated
# exactly; timings are not meaningful).
#
#   bash benchmarks/aarch64_check.sh                 # Debian 12 host, as root (apt multiarch; ~150 MB in WORK)
#   QEMU_CPU=cortex-a76 bash benchmarks/aarch64_check.sh
#   WORK=/tmp/lpr-aarch64 bash benchmarks/aarch64_check.sh evaluate models/cn --data ../shared/data/crops --json
#
# Needs qemu-user 8 or newer (`apt install -t bookworm-backports qemu-user`): LiteRT's invoke segfaults under
# Debian 12's own qemu 7.2. Set QEMU=/path/to/qemu-aarch64 to pick one. The arm64 packages named below are
# Debian 12's (Python 3.11); another release names them differently.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/lpr-aarch64}
export QEMU_CPU=${QEMU_CPU:-cortex-a72}
QEMU=${QEMU:-$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)}
[ -n "$QEMU" ] || { echo "no qemu-aarch64: apt install qemu-user (8 or newer), or set QEMU=/path/to/qemu-aarch64" >&2; exit 2; }
major=$("$QEMU" --version | sed -n 's/.*version \([0-9]*\).*/\1/p' | head -1)
[ "${major:-0}" -ge 8 ] || { echo "$QEMU is qemu $major; LiteRT needs qemu-user 8 or newer (see this script's header)" >&2; exit 2; }

if [ ! -x "$WORK/root/usr/bin/python3.11" ]; then
    mkdir -p "$WORK/debs" "$WORK/root"
    dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
    (cd "$WORK/debs" && apt-get download -q \
        python3.11-minimal:arm64 libpython3.11-minimal:arm64 libpython3.11-stdlib:arm64 libc6:arm64 libexpat1:arm64 \
        zlib1g:arm64 libffi8:arm64 libssl3:arm64 libbz2-1.0:arm64 liblzma5:arm64 libsqlite3-0:arm64 \
        libstdc++6:arm64 libgcc-s1:arm64 libuuid1:arm64 libncursesw6:arm64 libtinfo6:arm64 libcrypt1:arm64)
    for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$WORK/root"; done
fi
if [ ! -d "$WORK/site/ai_edge_litert" ]; then
    # the runtime dependencies of pyproject.toml, as pip picks them on glibc 2.36 (Bookworm): it matches --platform
    # tags exactly, so every manylinux level up to 2.36 is named
    platforms=()
    for tag in manylinux2014 manylinux_2_17 manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_36; do
        platforms+=(--platform "${tag}_aarch64")
    done
    pip install -q --target "$WORK/site" --python-version 3.11 --implementation cp --abi cp311 --only-binary=:all: \
        "${platforms[@]}" ai-edge-litert numpy opencv-python-headless click cryptography
fi

lpr() {  # lpr-sdk on the emulated aarch64 Python, from this checkout
    PYTHONPATH="$WORK/site:$REPO" PYTHONNOUSERSITE=1 "$QEMU" -L "$WORK/root" "$WORK/root/usr/bin/python3.11" \
        -c 'import sys; from lpr_cli import main; sys.argv[0] = "lpr-sdk"; main()' "$@"
}

cd "$REPO"
if [ $# -gt 0 ]; then
    lpr "$@"
    exit
fi
lpr selftest
if [ -d ../shared/data/crops ]; then
    for bundle in cn latin; do
        lpr evaluate "models/$bundle" --data ../shared/data/crops --split test
    done
fi
