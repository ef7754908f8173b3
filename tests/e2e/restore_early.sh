#!/usr/bin/env bash
# A real kernel snapshotted in its first moments, 20 times: each round boots ember's vmlinux with
# two vCPUs through the API, pauses it at once or as soon as its first console line appears (while
# it is still setting itself up: the second vCPU not yet started, timers not yet calibrated),
# snapshots it and kills the process; a new ember restores it and the kernel must go on to run /sbin/init and reboot.
# The point of the pause varies from round to round with the host's timing; every round must end in
# the guest's own reset, never a triple fault or a hang.
ember=$1
source "$(dirname "$0")/common.sh"
rounds=${EMBER_EARLY_ROUNDS:-20}
args="console=ttyS0 reboot=k panic=-1 nomodule i8042.noaux i8042.nomux i8042.nopnp"

for round in $(seq 1 "$rounds"); do
    rm -f "$work"/a.sock "$work"/b.sock "$work"/console_* "$work"/vm.*
    "$ember" --api-sock "$work/a.sock" --serial-out "$work/console_a" 2> "$work/log_a" &
    pid_a=$!
    api_up "$work/a.sock"
    must 204 api "$work/a.sock" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 128}'
    must 204 api "$work/a.sock" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"$args\"}"
    must 204 api "$work/a.sock" PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/rootfs.ext4\", \"is_root_device\": true}"
    must 204 api "$work/a.sock" PUT /actions '{"action_type": "InstanceStart"}'
    # Odd rounds pause as soon as InstanceStart has answered, even ones at the first console line.
    if [ $((round % 2)) -eq 0 ]; then
        wait_for "$work/console_a" "Linux version" 600 || { echo "FAIL: round $round: no console output"; exit 1; }
    fi
    must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
    must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_path\": \"$work/vm.state\", \"mem_file_path\": \"$work/vm.mem\"}"
    kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null
    at=$(grep -c . "$work/console_a")

    "$ember" --api-sock "$work/b.sock" --serial-out "$work/console_b" 2> "$work/log_b" &
    pid_b=$!
    api_up "$work/b.sock"
    must 204 api "$work/b.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/vm.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/vm.mem\"}, \"resume_vm\": true}"
    wait_exit "$pid_b" 600; rc=$?
    if grep -qF "ember-init: running as init; rebooting" "$work/console_b" &&
        grep -qF "exited: guest reset the VM" "$work/log_b" && [ "$rc" -eq 0 ]; then
        echo "ok: round $round: paused after $at console lines; the restored kernel ran init and rebooted"
    else
        echo "FAIL: round $round: paused after $at console lines; exit code $rc"
        echo "--- console before the snapshot"; tail -n 5 "$work/console_a"
        echo "--- log after the restore"; cat "$work/log_b"
        echo "--- the snapshot's vCPUs"; "$(dirname "$ember")/ember-snapshot-info" "$work/vm.state" | grep '^vCPU'
        echo "--- console after the restore"; cat "$work/console_b"
        failures=$((failures + 1))
    fi
done
[ "$failures" -eq 0 ] || { echo "FAIL: $failures of $rounds rounds"; exit 1; }
