# Sourced by the real-kernel tests. Provides the kernel and rootfs from rootfs-tools (built once and
# cached), a work directory with a private copy of the rootfs, and a network namespace $ns with tap0
# at 172.30.0.1/24 and dnsmasq leasing on it; at exit, background jobs are killed and all of this
# is removed.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kernel=$("$repo/rootfs-tools/build-kernel" | tail -n 1) || { echo "FAIL: could not build the kernel"; exit 1; }
rootfs=$("$repo/rootfs-tools/build-rootfs" | tail -n 1) || { echo "FAIL: could not build the rootfs"; exit 1; }

work=$(mktemp -d)
ns="ember-e2e-$$"
cleanup() {
    local jobs_left; jobs_left=$(jobs -p)
    [ -n "$jobs_left" ] && kill -9 $jobs_left 2>/dev/null
    [ -f "$work/dnsmasq.pid" ] && kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" ip tuntap add dev tap0 mode tap
ip -n "$ns" addr add 172.30.0.1/24 dev tap0
ip -n "$ns" link set tap0 up
ip netns exec "$ns" dnsmasq --no-resolv --no-hosts --port=0 --interface=tap0 --bind-interfaces \
    --dhcp-range=172.30.0.10,172.30.0.20,255.255.255.0,1h --dhcp-leasefile="$work/leases" \
    --pid-file="$work/dnsmasq.pid" --log-facility="$work/dnsmasq.log" --log-dhcp
cp --reflink=auto "$rootfs/rootfs.ext4" "$work/rootfs.ext4"

# Kernel command line of both tests: the console on the UART, a reset ends the VM, and the lease
# comes from dnsmasq above.
boot_args="console=ttyS0 reboot=k panic=-1 nomodule i8042.noaux i8042.nomux i8042.nopnp ip=dhcp"

failures=0
expect() {  # expect FILE TEXT: a line of $work/FILE contains TEXT
    if grep -qF -- "$2" "$work/$1"; then echo "ok: $1: $2"; else echo "FAIL: no '$2' in $1"; failures=$((failures + 1)); fi
}
absent() {  # absent FILE TEXT: no line of $work/FILE contains TEXT
    if grep -qF -- "$2" "$work/$1"; then echo "FAIL: '$2' in $1"; failures=$((failures + 1)); else echo "ok: no '$2' in $1"; fi
}
