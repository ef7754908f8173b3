#!/usr/bin/env bash
# The one real-kernel boot: ember's own vmlinux (built and cached by rootfs-tools) mounts its ext4
# root from virtio-blk and runs /sbin/init; the kernel console shows the MP table, the UART in
# interrupt mode, the AT keyboard on our i8042 and the virtio disk; then init ends the VM (a reboot
# on hardware KVM; on a host that emulates guest ring 0 a system call faults, init dies, and
# panic=-1 reboots) and ember exits cleanly.
set -uo pipefail
ember=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
config=$("$repo/rootfs-tools/default-config" | tail -n 1) || { echo "FAIL: could not build the guest"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
timeout 1500 "$ember" --no-api --config-file "$config" > "$work/console" 2> "$work/log"
rc=$?
echo "boot took $(( $(date +%s) - start ))s, exit code $rc"

failures=0
expect() {  # expect FILE TEXT: a line of FILE contains TEXT
    if grep -qF -- "$2" "$work/$1"; then echo "ok: $2"; else echo "FAIL: no '$2' in $1"; failures=$((failures + 1)); fi
}
expect console "found SMP MP-table at [mem 0x0009fc00-0x0009fc0f]"
expect console "IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23"
expect console "serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A"
expect console "input: AT Translated Set 2 keyboard"
expect console "virtio_blk virtio0: [vda] 131072 512-byte logical blocks"
expect console "VFS: Mounted root (ext4 filesystem) on device 254:0."
expect console "Run /sbin/init as init process"
expect log "exited: guest reset the VM (reset through the i8042 keyboard controller)"
if grep -qF "ember-init: running as init" "$work/console" || grep -qF "Attempted to kill init" "$work/console"; then
    echo "ok: init ran"
else
    echo "FAIL: init neither printed nor faulted"; failures=$((failures + 1))
fi
[ "$rc" -eq 0 ] || { echo "FAIL: ember exited with $rc"; failures=$((failures + 1)); }
if [ "$failures" -ne 0 ]; then
    echo "--- ember log"; cat "$work/log"; echo "--- last console lines"; tail -n 40 "$work/console"
    exit 1
fi
