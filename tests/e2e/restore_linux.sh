#!/usr/bin/env bash
# A real kernel across a snapshot: ember boots its own vmlinux through the API (root on
# virtio-blk, ip=dhcp over virtio-net on a tap in a private namespace with dnsmasq), pauses it once
# the disk is probed, snapshots it and is killed; a new ember restores it and resumes, and the
# kernel goes on from there: its DHCP lease, the root mount and /sbin/init all happen after the
# restore, so the disk and the network work in the new process too. The first process's tap has no
# DHCP server behind it; the restore moves the interface to the one that has (network_overrides,
# as a host agent does for clones), so the lease can only come through the overridden tap.
set -uo pipefail
ember=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
kernel=$("$repo/rootfs-tools/build-kernel" | tail -n 1) || { echo "FAIL: could not build the kernel"; exit 1; }
rootfs=$("$repo/rootfs-tools/build-rootfs" | tail -n 1) || { echo "FAIL: could not build the rootfs"; exit 1; }

work=$(mktemp -d)
ns="ember-restore-$$"
cleanup() {
    [ -n "${pid_a:-}" ] && kill -9 "$pid_a" 2>/dev/null
    [ -n "${pid_b:-}" ] && kill -9 "$pid_b" 2>/dev/null
    [ -f "$work/dnsmasq.pid" ] && kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" ip tuntap add dev tap0 mode tap
ip netns exec "$ns" ip tuntap add dev tapsnap mode tap
ip -n "$ns" link set tapsnap up
ip -n "$ns" addr add 172.30.0.1/24 dev tap0
ip -n "$ns" link set tap0 up
ip netns exec "$ns" dnsmasq --no-resolv --no-hosts --port=0 --interface=tap0 --bind-interfaces \
    --dhcp-range=172.30.0.10,172.30.0.20,255.255.255.0,1h --dhcp-leasefile="$work/leases" \
    --pid-file="$work/dnsmasq.pid" --log-facility="$work/dnsmasq.log" --log-dhcp
cp --reflink=auto "$rootfs/rootfs.ext4" "$work/rootfs.ext4"

api() {  # api SOCKET METHOD PATH BODY: prints the HTTP status
    curl -s -o "$work/reply" -w '%{http_code}' --unix-socket "$1" -X "$2" "http://localhost$3" ${4:+-d "$4"}
}
must() {  # must STATUS COMMAND...: the API call answers STATUS
    local want=$1; shift
    local got; got=$("$@")
    [ "$got" = "$want" ] || { echo "FAIL: $* answered $got: $(cat "$work/reply")"; exit 1; }
}
wait_for() {  # wait_for FILE TEXT SECONDS
    for _ in $(seq 1 $(( $3 * 10 ))); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

start=$(date +%s)
ip netns exec "$ns" "$ember" --api-sock "$work/a.sock" --serial-out "$work/console_a" 2> "$work/log_a" &
pid_a=$!
must 204 api "$work/a.sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
must 204 api "$work/a.sock" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"console=ttyS0 reboot=k panic=-1 nomodule i8042.noaux i8042.nomux i8042.nopnp ip=dhcp\"}"
must 204 api "$work/a.sock" PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/rootfs.ext4\", \"is_root_device\": true}"
must 204 api "$work/a.sock" PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tapsnap", "guest_mac": "06:00:ac:10:00:02"}'
must 204 api "$work/a.sock" PUT /actions '{"action_type": "InstanceStart"}'
wait_for "$work/console_a" "virtio_blk virtio0: [vda]" 900 || { echo "FAIL: the disk was never probed"; tail -20 "$work/console_a"; exit 1; }
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/vm.state\", \"mem_file_path\": \"$work/vm.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2>/dev/null; pid_a=
echo "snapshot taken after $(( $(date +%s) - start ))s: $(ls -s --block-size=K "$work/vm.mem" | cut -d' ' -f1) of memory file on disk"

ip netns exec "$ns" "$ember" --api-sock "$work/b.sock" --serial-out "$work/console_b" 2> "$work/log_b" &
pid_b=$!
must 204 api "$work/b.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/vm.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/vm.mem\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}]}"
for _ in $(seq 1 9000); do kill -0 "$pid_b" 2>/dev/null || break; sleep 0.1; done
wait "$pid_b"; rc=$?; pid_b=
echo "restored guest ran to its end, $(( $(date +%s) - start ))s in all, exit code $rc"

failures=0
expect() {  # expect FILE TEXT
    if grep -qF -- "$2" "$work/$1"; then echo "ok: $1: $2"; else echo "FAIL: no '$2' in $1"; failures=$((failures + 1)); fi
}
absent() {  # absent FILE TEXT
    if grep -qF -- "$2" "$work/$1"; then echo "FAIL: '$2' in $1"; failures=$((failures + 1)); else echo "ok: no '$2' in $1"; fi
}
expect console_a "virtio_blk virtio0: [vda]"
absent console_a "VFS: Mounted root"
absent console_a "IP-Config: Got DHCP answer"
absent console_b "Linux version"
expect console_b "IP-Config: Got DHCP answer from 172.30.0.1"
expect console_b "VFS: Mounted root (ext4 filesystem) on device 254:0."
expect console_b "Run /sbin/init as init process"
expect log_b "exited: guest reset the VM (reset through the i8042 keyboard controller)"
[ "$rc" -eq 0 ] || { echo "FAIL: restored ember exited with $rc"; failures=$((failures + 1)); }
if [ "$failures" -ne 0 ]; then
    echo "--- log a"; cat "$work/log_a"; echo "--- log b"; cat "$work/log_b"
    echo "--- console b"; tail -n 40 "$work/console_b"
    exit 1
fi
