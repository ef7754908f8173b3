#!/usr/bin/env bash
# The one real-kernel boot: ember's own vmlinux (built and cached by rootfs-tools) gets a DHCP
# lease over virtio-net from dnsmasq on a tap, mounts its ext4 root from virtio-blk and runs
# /sbin/init; the kernel console shows the MP table, the UART in interrupt mode, the AT keyboard on
# our i8042, the disk and the lease; then init, in user space, says so and reboots, which ends the
# VM, and ember exits cleanly. Guest user space must work: tests/run-all runs this suite on the host
# only where `ember --check-host` says it does, and under tests/nested/run elsewhere. Everything
# network runs in a namespace this script makes and removes.
ember=$1
source "$(dirname "$0")/common.sh"

cat > "$work/vm.json" <<JSON
{
  "boot-source": {
    "kernel_image_path": "$kernel",
    "boot_args": "$boot_args"
  },
  "drives": [{ "drive_id": "rootfs", "path_on_host": "$work/rootfs.ext4", "is_root_device": true }],
  "network-interfaces": [{ "iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02" }],
  "machine-config": { "vcpu_count": 1, "mem_size_mib": 128 }
}
JSON

start=$(date +%s)
timeout 1500 ip netns exec "$ns" "$ember" --no-api --config-file "$work/vm.json" > "$work/console" 2> "$work/log"
rc=$?
echo "boot took $(( $(date +%s) - start ))s, exit code $rc"

expect console "found SMP MP-table at [mem 0x0009fc00-0x0009fc0f]"
expect console "IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23"
expect console "serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A"
expect console "input: AT Translated Set 2 keyboard"
expect console "virtio_blk virtio0: [vda] 131072 512-byte logical blocks"
expect console "IP-Config: Got DHCP answer from 172.30.0.1"
expect console "VFS: Mounted root (ext4 filesystem) on device 254:0."
expect console "Run /sbin/init as init process"
expect log "exited: guest reset the VM (reset through the i8042 keyboard controller)"
expect dnsmasq.log "DHCPACK(tap0)"
expect console "ember-init: running as init; rebooting"
absent console "Kernel panic"
[ "$rc" -eq 0 ] || { echo "FAIL: ember exited with $rc"; failures=$((failures + 1)); }
if [ "$failures" -ne 0 ]; then
    echo "--- ember log"; cat "$work/log"; echo "--- dnsmasq log"; cat "$work/dnsmasq.log"
    echo "--- last console lines"; tail -n 40 "$work/console"
    exit 1
fi
