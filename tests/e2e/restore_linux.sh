#!/usr/bin/env bash
# A real kernel across a snapshot: ember boots its own vmlinux through the API (root on
# virtio-blk, ip=dhcp over virtio-net on a tap in a private namespace with dnsmasq), pauses it while
# it waits for a DHCP answer, snapshots it and is killed; a new ember restores it and resumes, and
# the kernel goes on from there: its DHCP lease, the root mount and /sbin/init all happen after the
# restore, so the disk and the network work in the new process too. The first process's tap has no
# DHCP server behind it, so the kernel waits there (for over a minute before it gives up) however
# fast or slow the host; the restore moves the interface to the tap that has one
# (network_overrides, as a host agent does for clones), so the lease can only come through it.
ember=$1
source "$(dirname "$0")/common.sh"
ip netns exec "$ns" ip tuntap add dev tapsnap mode tap
ip -n "$ns" link set tapsnap up

start=$(date +%s)
configure_lease() {  # configure_lease SOCKET: the kernel waits for a lease on tapsnap
    must 204 api "$1" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
    must 204 api "$1" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"$boot_args\"}"
    must 204 api "$1" PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/rootfs.ext4\", \"is_root_device\": true}"
    must 204 api "$1" PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tapsnap", "guest_mac": "06:00:ac:10:00:02"}'
}
boot_a "$ns" "Sending DHCP requests" 300 configure_lease
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/vm.state\", \"mem_file_path\": \"$work/vm.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2>/dev/null; pid_a=
echo "snapshot taken after $(( $(date +%s) - start ))s: $(ls -s --block-size=K "$work/vm.mem" | cut -d' ' -f1) of memory file on disk"

ip netns exec "$ns" "$ember" --api-sock "$work/b.sock" --serial-out "$work/console_b" 2> "$work/log_b" &
pid_b=$!
api_up "$work/b.sock"
must 204 api "$work/b.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/vm.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/vm.mem\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}]}"
wait_exit "$pid_b" 300; rc=$?; pid_b=
echo "restored guest ran to its end, $(( $(date +%s) - start ))s in all, exit code $rc"

expect console_a "virtio_blk virtio0: [vda]"
absent console_a "VFS: Mounted root"
absent console_a "IP-Config: Got DHCP answer"
absent console_b "Linux version"
expect console_b "IP-Config: Got DHCP answer from 172.30.0.1"
expect console_b "VFS: Mounted root (ext4 filesystem) on device 254:0."
expect console_b "Run /sbin/init as init process"
expect console_b "ember-init: running as init; rebooting"
expect log_b "exited: guest reset the VM (reset through the i8042 keyboard controller)"
[ "$rc" -eq 0 ] || { echo "FAIL: restored ember exited with $rc"; failures=$((failures + 1)); }
if [ "$failures" -ne 0 ]; then
    echo "--- log a"; cat "$work/log_a"; echo "--- log b"; cat "$work/log_b"
    echo "--- console b"; tail -n 40 "$work/console_b"
    exit 1
fi
