#!/usr/bin/env bash
# Builds the hypervisor and its guest from source and runs them under
# qemu-system-aarch64 (-M virt,virtualization=on -cpu max -smp 2, multi-
# threaded TCG), each run bounded by `timeout`:
#   1. the scenarios (normal build): every scenario and the summary PASS;
#   2. the self-test mode of the same image: PASS;
#   3. the bite builds (no TLB invalidation at all; the anchored merge's
#      VMID-wide flush dropped): each must FAIL at least one scenario.
# Usage: Hypervisors/arm64/run.sh [--no-bite] [--keep-going]
# Environment: HYP_WORK=dir (default .build-hyp), HYP_TIMEOUT=s (default 120).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${HYP_WORK:-$ROOT/.build-hyp}
TIMEOUT=${HYP_TIMEOUT:-120}
bite=1
for arg in "$@"; do
    case "$arg" in
        --no-bite) bite=0 ;;
        *) echo "run: unknown option $arg" >&2; exit 2 ;;
    esac
done

command -v swiftc >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v aarch64-linux-gnu-as >/dev/null || need+=(binutils-aarch64-linux-gnu)
if [ ${#need[@]} -gt 0 ]; then
    echo "hyp: installing ${need[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends "${need[@]}"; }
fi

# Runs hyp.elf of build $1 in mode $2 (scenarios | self-test); log in $WORK/$1-$2.log.
run_qemu() {
    local build=$1 mode=$2 extra=()
    [ "$mode" = self-test ] && extra=(-device loader,addr=0x41fff000,data=0x5E1F7E57,data-len=4)
    local log="$WORK/$build-$mode.log" status=0
    local began=$(date +%s%N)
    timeout "$TIMEOUT" qemu-system-aarch64 -M virt,virtualization=on -cpu max -smp 2 -m 512M \
        -nographic -nic none -kernel "$WORK/$build/hyp.elf" "${extra[@]}" >"$log" 2>&1 </dev/null || status=$?
    local ended=$(date +%s%N)
    tr -d '\r' <"$log"
    echo "hyp: $build $mode: qemu exit $status, $(( (ended - began) / 1000000 )) ms wall"
    [ "$status" = 124 ] && echo "hyp: $build $mode timed out after ${TIMEOUT}s"
    return 0
}

status=0
"$HERE/build.sh" "$WORK/normal" normal
run_qemu normal scenarios
grep -q -- '^summary: .* -> PASS$' "$WORK/normal-scenarios.log" && ! grep -q 'FAIL' "$WORK/normal-scenarios.log" \
    || { echo "hyp: FAILED: scenarios"; status=1; }
run_qemu normal self-test
grep -q -- '^self-test: .* -> PASS$' "$WORK/normal-self-test.log" && ! grep -q 'FAIL' "$WORK/normal-self-test.log" \
    || { echo "hyp: FAILED: self-test"; status=1; }

if [ $bite = 1 ]; then
    # Each bite build must fail at least one scenario.
    for variant in bite-no-invalidation bite-no-vmid-flush; do
        "$HERE/build.sh" "$WORK/$variant" "$variant"
        run_qemu "$variant" scenarios
        caught=$(grep -o '^scenario [0-9] [a-z-]*: FAIL' "$WORK/$variant-scenarios.log" | cut -d' ' -f3 | tr -d ':' | tr '\n' ' ' || true)
        if [ -n "$caught" ]; then
            echo "hyp: bite $variant caught by: $caught"
        else
            echo "hyp: FAILED: bite build $variant passed every scenario"; status=1
        fi
    done
fi
[ $status = 0 ] && echo "hyp: all checks passed" || echo "hyp: FAILED"
exit $status
