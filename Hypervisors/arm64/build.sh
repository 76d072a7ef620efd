#!/usr/bin/env bash
# Builds the bare-metal hypervisor (hyp.elf) and its test guest from source:
#   Hypervisors/arm64/build.sh OUT [normal|bite-no-invalidation|bite-no-vmid-flush]
# SLATCore, SLATArm64 and SLATArm64Hardware as Embedded Swift for
# aarch64-none-none-elf (swift build), the guest (Embedded Swift + a few
# lines of assembly), then the hypervisor, linked with the toolchain's
# ld.lld. Needs aarch64-linux-gnu-as and -objcopy (binutils-aarch64-linux-gnu).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
VARIANT=${2:-normal}
# HYP_BUILD_WRAPPER: a command every compiler run is wrapped in (e.g. a
# job-slot limiter on a shared machine); empty by default.
SLOT=${HYP_BUILD_WRAPPER:-}
TOOLS=$(dirname "$(command -v swiftc)")
SCRATCH="$ROOT/.build-hyp/swiftpm"

SWIFTFLAGS=(-target aarch64-none-none-elf -enable-experimental-feature Embedded -wmo -parse-as-library
            -Osize -Xfrontend -disable-stack-protector -Xcc -mgeneral-regs-only -warnings-as-errors)
CFLAGS=(-target aarch64-none-elf -ffreestanding -fno-builtin -nostdlib -mgeneral-regs-only -O2 -Wall -Werror)

# 1. The library, as the Embedded build of the package (no warnings allowed).
LOG="$OUT/library-build.log"
status=0
(cd "$ROOT" && $SLOT swift build --triple aarch64-none-none-elf -c release \
    -Xswiftc -enable-experimental-feature -Xswiftc Embedded -Xswiftc -wmo \
    -Xswiftc -Xfrontend -Xswiftc -disable-stack-protector -Xcc -mgeneral-regs-only \
    --scratch-path "$SCRATCH" --target SLATArm64Hardware) >"$LOG" 2>&1 || status=$?
if [ $status -ne 0 ] || grep -q 'warning:' "$LOG"; then
    grep -E 'warning:|error:' "$LOG" || tail -n 20 "$LOG"
    echo "build: library build failed" >&2
    exit 1
fi
LIB="$SCRATCH/release"

# 2. The guest: a flat image loaded at IPA 0x4000_0000.
mkdir -p "$OUT/guest"
aarch64-linux-gnu-as -o "$OUT/guest/start.o" "$HERE/guest/start.s"
"$TOOLS/clang" "${CFLAGS[@]}" -c "$HERE/guest/runtime.c" -o "$OUT/guest/runtime.o"
$SLOT swiftc "${SWIFTFLAGS[@]}" -module-name Guest -import-objc-header "$HERE/guest/support.h" \
    -c "$HERE"/guest/*.swift -o "$OUT/guest/guest.o"
"$TOOLS/ld.lld" -nostdlib -static -T "$HERE/guest/link.ld" -o "$OUT/guest.elf" \
    "$OUT/guest/start.o" "$OUT/guest/guest.o" "$OUT/guest/runtime.o"
aarch64-linux-gnu-objcopy -O binary "$OUT/guest.elf" "$OUT/guest.bin"

# 3. The hypervisor.
DEFINES=()
case "$VARIANT" in
    normal) ;;
    bite-no-invalidation) DEFINES=(-D HYP_BITE_NO_INVALIDATION) ;;
    bite-no-vmid-flush) DEFINES=(-D HYP_BITE_NO_VMID_FLUSH) ;;
    *) echo "build: unknown variant $VARIANT" >&2; exit 2 ;;
esac
mkdir -p "$OUT/hyp"
aarch64-linux-gnu-as -I "$OUT" -o "$OUT/hyp/start.o" "$HERE/hyp/start.s"
"$TOOLS/clang" "${CFLAGS[@]}" -c "$HERE/hyp/runtime.c" -o "$OUT/hyp/runtime.o"
$SLOT swiftc "${SWIFTFLAGS[@]}" ${DEFINES[@]+"${DEFINES[@]}"} -module-name Hypervisor \
    -I "$LIB/Modules" -Xcc -fmodule-map-file="$LIB/CSLATArm64Hardware.build/module.modulemap" \
    -Xcc -I"$ROOT/Sources/CSLATArm64Hardware/include" \
    -import-objc-header "$HERE/hyp/support.h" -c "$HERE"/hyp/*.swift -o "$OUT/hyp/hyp.o"
"$TOOLS/ld.lld" -nostdlib -static -T "$HERE/hyp/link.ld" -o "$OUT/hyp.elf" \
    "$OUT/hyp/start.o" "$OUT/hyp/hyp.o" "$OUT/hyp/runtime.o" \
    "$LIB"/SLATCore.build/*.o "$LIB"/SLATArm64.build/*.o "$LIB"/SLATArm64Hardware.build/*.o
echo "build: $OUT/hyp.elf ($VARIANT)"
