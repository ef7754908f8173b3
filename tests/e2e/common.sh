# Sourced by the real-kernel tests. Provides the kernel and rootfs from rootfs-tools (built once and
# cached), a work directory with a private copy of the rootfs, and a network namespace $ns with tap0
# at 172.30.0.1/24 and dnsmasq leasing on it; namespaces a test adds to $extra_ns go too. At exit,
# background jobs are killed and all of this is removed. Also: expect/absent (console checks) and
# api/must/api_up/wait_for (driving ember's API with curl) and wait_exit.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kernel=$("$repo/rootfs-tools/build-kernel" | tail -n 1) || { echo "FAIL: could not build the kernel"; exit 1; }
rootfs=$("$repo/rootfs-tools/build-rootfs" | tail -n 1) || { echo "FAIL: could not build the rootfs"; exit 1; }

work=$(mktemp -d)
ns="ember-e2e-$$"
extra_ns=()
cleanup() {
    local jobs_left; jobs_left=$(jobs -p)
    [ -n "$jobs_left" ] && kill -9 $jobs_left 2>/dev/null
    [ -f "$work/dnsmasq.pid" ] && kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    local n; for n in "${extra_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
# $tap_user, if the test sets it, may open the tap without privileges (a jailed ember).
ip netns exec "$ns" ip tuntap add dev tap0 mode tap ${tap_user:+user "$tap_user"}
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

api() {  # api SOCKET METHOD PATH BODY: prints the HTTP status; the body goes to $work/reply
    curl -s --max-time 300 -o "$work/reply" -w '%{http_code}' --unix-socket "$1" -X "$2" "http://localhost$3" ${4:+-d "$4"}
}
show_logs() {  # the last lines of every ember log in $work
    local f; for f in "$work"/log_*; do [ -s "$f" ] && { echo "--- $(basename "$f")"; tail -n 20 "$f"; }; done
}
must() {  # must STATUS COMMAND...: the API call answers STATUS, or the test ends here
    local want=$1; shift
    local got; got=$("$@")
    [ "$got" = "$want" ] && return 0
    echo "FAIL: $* answered $got: $(cat "$work/reply")"
    show_logs
    # Where each ember thread is, for a request that hung.
    local p t; for p in $(pgrep -f -- "--api-sock $work/"); do
        for t in /proc/"$p"/task/*; do
            echo "--- $p/$(basename "$t") $(cat "$t/comm"): $(cut -d' ' -f3 "$t/stat") in $(cat "$t/wchan" 2>/dev/null)"
            head -n 8 "$t/stack" 2>/dev/null
        done
    done
    exit 1
}
# Waits are bounded by the clock, not by a count of tries: under tests/nested/run every process
# start costs a large fraction of a second, and 3,000 tries of 0.1 s took more than 30 minutes.
api_up() {  # api_up SOCKET: waits (60 s) until a new process answers GET / (it may not listen yet)
    local deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do [ "$(api "$1" GET /)" = 200 ] && return 0; sleep 0.1; done
    echo "FAIL: nothing answered on $1"; show_logs; exit 1
}
wait_exit() {  # wait_exit PID SECONDS: the background job's exit status, once it ends by itself
    # or, as a failsafe, is killed after SECONDS
    local pid=$1 rc=0
    { sleep "$2" && kill -9 "$pid"; } 2>/dev/null &
    local failsafe=$!
    wait "$pid" || rc=$?
    pkill -P "$failsafe" sleep 2>/dev/null; wait "$failsafe" 2>/dev/null
    return "$rc"
}
wait_for() {  # wait_for FILE TEXT SECONDS: until a line of FILE contains TEXT
    local deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    grep -qF -- "$2" "$1" 2>/dev/null
}
