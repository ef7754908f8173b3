#!/usr/bin/env bash
# The one real-kernel boot: ember's own vmlinux (built and cached by rootfs-tools) gets a DHCP
# lease over virtio-net from dnsmasq on a tap, mounts its ext4 root from virtio-blk and runs
# /sbin/init; the kernel console shows the MP table, the UART in interrupt mode, the AT keyboard on
# our i8042, the disk and the lease; then init, in user space, says so and reboots, which ends the
# VM, and ember exits cleanly. Guest user space must work: tests/run-all runs this suite on the host
# only where `ember --check-host` says it does, and under tests/nested/run elsewhere. Everything
# network runs in a namespace this script makes and removes.
#
# boot_linux.sh EMBER [JAILER]: with JAILER, the same boot by an ember that ember-jailer started
# in a jail, as uid and gid 10000, in the namespace ($ns) through --netns: the kernel, the rootfs
# and the config are put into the jail as a host agent would, and paths are the jail's.
ember=$1
jailer=${2:-}
[ -n "$jailer" ] && tap_user=10000
source "$(dirname "$0")/common.sh"

if [ -n "$jailer" ]; then
    jail="$work/jails/$(basename "$ember")/e2e/root"
    mkdir -p "$jail"
    cp "$kernel" "$jail/vmlinux"
    mv "$work/rootfs.ext4" "$jail/rootfs.ext4"
    chown 10000:10000 "$jail/vmlinux" "$jail/rootfs.ext4"
    kernel_in_vm=/vmlinux
    rootfs_in_vm=/rootfs.ext4
    config=$jail/vm.json
    config_in_vm=/vm.json
else
    kernel_in_vm=$kernel
    rootfs_in_vm=$work/rootfs.ext4
    config=$work/vm.json
    config_in_vm=$config
fi

cat > "$config" <<JSON
{
  "boot-source": {
    "kernel_image_path": "$kernel_in_vm",
    "boot_args": "$boot_args"
  },
  "drives": [{ "drive_id": "rootfs", "path_on_host": "$rootfs_in_vm", "is_root_device": true }],
  "network-interfaces": [{ "iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02" }],
  "machine-config": { "vcpu_count": 1, "mem_size_mib": 128 }
}
JSON

start=$(date +%s)
if [ -n "$jailer" ]; then
    timeout 300 "$jailer" --id e2e --exec-file "$ember" --uid 10000 --gid 10000 \
        --chroot-base-dir "$work/jails" --netns "/var/run/netns/$ns" \
        -- --no-api --config-file "$config_in_vm" > "$work/console" 2> "$work/log"
else
    timeout 300 ip netns exec "$ns" "$ember" --no-api --config-file "$config_in_vm" > "$work/console" 2> "$work/log"
fi
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
if [ -n "$jailer" ]; then
    # The jailer's pid file names the process that ran the VM.
    [ -s "$jail/ember.pid" ] && echo "ok: jailed, pid $(cat "$jail/ember.pid")" ||
        { echo "FAIL: no pid file in the jail"; failures=$((failures + 1)); }
fi
[ "$rc" -eq 0 ] || { echo "FAIL: ember exited with $rc"; failures=$((failures + 1)); }
if [ "$failures" -ne 0 ]; then
    echo "--- ember log"; cat "$work/log"; echo "--- dnsmasq log"; cat "$work/dnsmasq.log"
    echo "--- last console lines"; tail -n 40 "$work/console"
    exit 1
fi
