#!/usr/bin/env bash
# Snapshots across CPU models (issue 47): a function snapshotted on one host and restored on a host
# of another CPU model, with and without the fleet template of the two, in both directions.
#
# The hosts are nested VMs (tests/nested/run -C) of three QEMU CPU models that TCG can emulate:
#   A  EPYC                                  the newest
#   B  EPYC without avx2, rdrand, clflushopt the same generation, with holes
#   C  Opteron_G3                            an older generation: no XSAVE, so no XCR0, no
#                                            CR4.OSXSAVE and no AVX at all
# (Opteron_G4 and G5 would be nearer A, but Debian's 6.12 kernel hangs in its early FPU set-up on
# them under QEMU 7.2's TCG.) A host's KVM is only the nested VM's, so every step runs in a nested
# VM of its host's model (two at a time where they share no file), and hands the next its files
# (dumps, templates, snapshots) in a directory of this host's, which each nested VM sees over
# virtiofs:
#   1. B, C: each dumps its guest CPU (ember-cpu dump) and snapshots the function booted plain.
#   2. A, in two VMs: one dumps A's CPU, intersects A's with B's and A's with C's (the two fleet
#            templates) and snapshots the function booted under each; the other loads B's and C's
#            plain snapshots, which answer (their CPUs are within A's), and snapshots the function
#            booted plain.
#   3. B, C: A's plain snapshot is refused before its guest runs, naming what this host lacks, and
#            ember exits as after any failed load; A's snapshot under the pair's template loads and
#            answers; each snapshots the function booted under that template.
#   4. A:    B's and C's snapshots under the templates load and answer.
# "Answers" means the restored function's first answer continues the snapshot's: invocation 2, the
# same boot_id. A nested VM that died (tests/nested/run's 125, a fault of the runner) gets its step
# run again, up to twice more, and says so.
#
# cpu_models.sh EMBER EMBER_CPU                   on this host (ctest runs it so)
# cpu_models.sh --in HOST STEP DIR EMBER EMBER_CPU  one step, inside HOST's nested VM
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [ "${1:-}" != --in ]; then
    [ $# = 2 ] || { echo "usage: $0 EMBER EMBER_CPU" >&2; exit 2; }
    declare -A model=([A]=EPYC [B]=EPYC,-avx2,-rdrand,-clflushopt [C]=Opteron_G3)
    # The kernel and rootfs are built here, where nothing is emulated, if they are not cached.
    "$repo/rootfs-tools/build-kernel" > /dev/null && "$repo/rootfs-tools/build-rootfs" > /dev/null ||
        { echo "FAIL: could not build the kernel or the rootfs"; exit 1; }
    shared=$(mktemp -d)
    trap 'rm -rf "$shared"' EXIT
    ember=$1
    ember_cpu=$2
    # Within ctest's 3,600 s (tests/e2e/CMakeLists.txt), so that this script, not ctest's kill,
    # ends a run that overstays, and removes its files. Here the seven steps, in four rounds, take
    # about 140 s (a 2-core AMD host, QEMU 10).
    deadline=$((SECONDS + 3300))
    # session HOST STEP: the step in a nested VM of HOST's model. One CPU: five of the six nested VMs
    # seen to die under QEMU 10 had two, as had those whose guests triple-faulted (issue 67).
    session() {
        local try rc limit start=$SECONDS
        for try in 1 2 3; do
            echo "=== $2 on $1 (-cpu ${model[$1]},+svm,+npt)"
            limit=$((deadline - SECONDS < 900 ? deadline - SECONDS : 900))
            [ "$limit" -ge 60 ] || { echo "FAIL: no time left for $2 on $1"; return 1; }
            rc=0
            "$repo/tests/nested/run" -C "${model[$1]},+svm,+npt" -c 1 -t "$limit" -- \
                env EMBERCTL="$EMBERCTL" "$0" --in "$1" "$2" "$shared" "$ember" "$ember_cpu" || rc=$?
            [ "$rc" = 125 ] || break
            echo "RETRY: the nested VM died under $2 on $1 (try $try of 3)"
        done
        [ "$rc" = 0 ] || { echo "FAIL: $2 on $1 (exit $rc)"; return 1; }
        echo "=== $2 on $1: done in $((SECONDS - start)) s"
    }
    # pair HOST STEP HOST STEP: two steps that share no file, side by side (a 2-core host runs both
    # VMs), each line headed by its host and step.
    pair() {
        local first rc=0
        session "$1" "$2" 2>&1 | sed -u "s/^/[$1 $2] /" &
        first=$!
        session "$3" "$4" 2>&1 | sed -u "s/^/[$3 $4] /" || rc=1
        wait "$first" || rc=1
        [ "$rc" = 0 ] || exit 1
    }
    pair B first C first
    pair A templates A plain
    pair B second C second
    session A last || exit 1
    echo "ok: every step on every host"
    exit 0
fi

host=$2
step=$3
shared=$4
ember=$5
ember_cpu=$6
source "$(dirname "$0")/common.sh"
function_disk="$rootfs/function.ext4"
fn_ns="fn-$$"
make_ns "$fn_ns" tap0 "$function_host_mac"

configure_under() {  # configure_under TEMPLATE SOCKET: the function's VM, under TEMPLATE if one
    configure_function "$2" "$kernel" "$function_disk" 128
    [ -z "$1" ] || must 204 api "$2" PUT /cpu-config "$(cat "$1")"
}
stop_a() { kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null; }

# snapshot_booted NAME [TEMPLATE]: boots the function (under TEMPLATE), has it answer, and leaves
# its snapshot in DIR as NAME.state, NAME.mem and NAME.boot_id.
snapshot_booted() {
    local name=$1 template=${2:-} first
    boot_a "$fn_ns" "fn: ready on $guest_ip:8080" 600 configure_under "$template"
    first=$(first_answer "$fn_ns") || { echo "FAIL: $name: the booted function never answered"; tail -n 20 "$work/console_a"; exit 1; }
    check "$name: the booted function answers: invocation 1" [ "$(field "$first" invocation)" = 1 ]
    check "$name: the answer carries the guest's boot_id" [ "$(field "$first" boot_id | wc -c)" = 37 ]
    must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
    must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/$name.state\", \"mem_file_path\": \"$work/$name.mem\"}"
    stop_a
    # Written in the nested VM's own tmpfs, then copied: virtiofs is slow to take a memory file.
    cp "$work/$name.state" "$work/$name.mem" "$shared/"
    rm "$work/$name.state" "$work/$name.mem"  # the nested VM's memory
    field "$first" boot_id > "$shared/$name.boot_id"
    echo "ok: $name: snapshotted ($(du -k --apparent-size "$work/$name.mem" | cut -f1) KiB of memory)"
}

# load SNAPSHOT: a new ember (its pid in $pid_a) is asked to load DIR's SNAPSHOT, resumed; the
# load's HTTP status goes to $loaded.
load() {
    rm -f "$work/a.sock" "$work/console_a"
    cp "$shared/$1.state" "$shared/$1.mem" "$work/"
    ip netns exec "$fn_ns" "$ember" --api-sock "$work/a.sock" --serial-out "$work/console_a" 2> "$work/log_a" &
    pid_a=$!
    api_up "$work/a.sock"
    loaded=$(api "$work/a.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/$1.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/$1.mem\"}, \"resume_vm\": true}")
}

# loads_and_answers SNAPSHOT: it loads here, and the function answers on from the snapshot.
loads_and_answers() {
    local body
    load "$1"
    if [ "$loaded" != 204 ]; then
        echo "FAIL: $1 on $host: the load answered $loaded: $(cat "$work/reply")"
        failures=$((failures + 1))
    elif body=$(first_answer "$fn_ns"); then
        check "$1 on $host: the function answers on: invocation 2" [ "$(field "$body" invocation)" = 2 ]
        check "$1 on $host: with the snapshot's boot_id" [ "$(field "$body" boot_id)" = "$(cat "$shared/$1.boot_id")" ]
    else
        echo "FAIL: $1 on $host: the restored function never answered"
        tail -n 20 "$work/console_a"; cat "$work/log_a"
        failures=$((failures + 1))
    fi
    stop_a
    rm "$work/$1.state" "$work/$1.mem"
}

# refused SNAPSHOT WHAT...: its load is refused, the error naming each WHAT that this host lacks
# (only the check made before any of the VM is built words it so); ember then exits 1, as Firecracker does after a failed load (and as ember
# does without --serve-after-failed-load).
refused() {
    local snapshot=$1 what
    shift
    load "$snapshot"
    check "$snapshot on $host: the load is refused (400, got $loaded)" [ "$loaded" = 400 ]
    echo "$snapshot on $host: $(cat "$work/reply")"
    check "$snapshot on $host: the error says what this host lacks" grep -qF "this host lacks " "$work/reply"
    for what in "$@"; do
        check "$snapshot on $host: the error names $what" grep -qE "lacks [^;]*\\b$what\\b" "$work/reply"
    done
    local rc=0
    wait_exit "$pid_a" 60 || rc=$?
    check "$snapshot on $host: ember then ends as after any failed load (exit 1, got $rc)" [ "$rc" = 1 ]
    rm "$work/$snapshot.state" "$work/$snapshot.mem"
}

case $host/$step in
    [BC]/first)
        "$ember_cpu" dump > "$shared/$host.json" || { echo "FAIL: ember-cpu dump on $host"; exit 1; }
        snapshot_booted "$host-plain"
        ;;
    A/templates)
        "$ember_cpu" dump > "$shared/A.json" || { echo "FAIL: ember-cpu dump on A"; exit 1; }
        for other in B C; do
            "$ember_cpu" intersect "$shared/A.json" "$shared/$other.json" > "$shared/A$other.json" ||
                { echo "FAIL: ember-cpu intersect A $other"; exit 1; }
            check "the template of A and $other fits A" "$ember_cpu" verify "$shared/A$other.json"
        done
        snapshot_booted A-under-AB "$shared/AB.json"
        snapshot_booted A-under-AC "$shared/AC.json"
        ;;
    A/plain)
        loads_and_answers B-plain
        loads_and_answers C-plain
        snapshot_booted A-plain
        ;;
    B/second | C/second)
        check "the template of A and $host fits $host" "$ember_cpu" verify "$shared/A$host.json"
        if [ "$host" = B ]; then
            refused A-plain avx2 rdrand clflushopt
        else
            refused A-plain avx xsave
        fi
        loads_and_answers "A-under-A$host"
        snapshot_booted "$host-under-A$host" "$shared/A$host.json"
        ;;
    A/last)
        loads_and_answers B-under-AB
        loads_and_answers C-under-AC
        ;;
    *) echo "FAIL: no step $step on $host"; exit 2 ;;
esac
[ "$failures" = 0 ]
