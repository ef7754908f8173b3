# Sourced by the real-kernel tests. Provides the kernel and rootfs from rootfs-tools (built once and
# cached), a work directory with a private copy of the rootfs, and a network namespace $ns with tap0
# at 172.30.0.1/24 and dnsmasq leasing on it; namespaces a test adds to $extra_ns go too. At exit,
# background jobs are killed and all of this is removed. Also: expect/absent (console checks) and
# api/must/api_up/wait_for (driving ember's API through emberctl), show_logs/show_embers (what
# ember said and where its threads wait) and wait_exit;
# boot_a (an ember on $work/a.sock booted until its console says a line); for function images,
# make_ns/field/check/boot_function/python_image.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -x "${EMBERCTL:-}" ] || { echo "FAIL: \$EMBERCTL names no emberctl (ctest sets it)"; exit 1; }
kernel=$("$repo/rootfs-tools/build-kernel" | tail -n 1) || { echo "FAIL: could not build the kernel"; exit 1; }
rootfs=$("$repo/rootfs-tools/build-rootfs" | tail -n 1) || { echo "FAIL: could not build the rootfs"; exit 1; }

work=$(mktemp -d)
ns="ember-e2e-$$"
extra_ns=()
cleanup() {
    if [ -n "${watchdog:-}" ]; then  # it first, then its sleep, which would wake it
        local nap; nap=$(pgrep -P "$watchdog")
        kill -9 "$watchdog" $nap 2>/dev/null
    fi
    local jobs_left; jobs_left=$(jobs -p)
    [ -n "$jobs_left" ] && kill -9 $jobs_left 2>/dev/null
    [ -f "$work/dnsmasq.pid" ] && kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    # A FUSE mount (ember-store-mount's) whose server was killed: unmounted, or rm could not go on.
    awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null
    local n; for n in "${extra_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# descendants PID SKIP: every process below PID, deepest first, leaving out SKIP and its own.
descendants() {
    local p; for p in $(pgrep -P "$1"); do [ "$p" = "$2" ] || { descendants "$p" "$2"; echo "$p"; }; done
}
# A test that has not ended by itself after EMBER_E2E_LIMIT seconds (default 900; ctest's own
# failsafe is 1800) shows where each of its processes waits, ember's threads too, and ends: its
# processes are killed (one left would hold ctest's output open), then the test gets SIGTERM, whose
# EXIT trap cleans up. A CI run met a test that stopped for 23 minutes with no line saying where.
e2e_watchdog() {
    local limit=$1 test_pid=$2 self=$BASHPID p t on_fuse=
    sleep "$limit" > /dev/null 2>&1
    echo "FAIL: the test did not end within ${limit}s; where each of its processes was:"
    for p in $(descendants "$test_pid" "$self"); do
        echo "--- $p $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-200)"
        for t in /proc/"$p"/task/*; do
            echo "    $(basename "$t") $(cat "$t/comm" 2>/dev/null): $(cut -d' ' -f3 "$t/stat" 2>/dev/null) in $(cat "$t/wchan" 2>/dev/null)"
            sed 's/^/        /' "$t/stack" 2>/dev/null | head -n 8
            grep -q 'fuse_' "$t/stack" 2>/dev/null && on_fuse=1
        done
    done
    # tests/run-all reads this line: under the nested runner the host's / (and so every binary a
    # test runs) is virtiofs, a FUSE file system; a request it never answers is the runner's fault.
    [ "${EMBER_NESTED:-}" = 1 ] && [ -n "$on_fuse" ] &&
        echo "FAIL: stalled on the nested runner's virtiofs: a process above waits on a FUSE request"
    # Stopped first: bash runs the EXIT trap as SIGTERM comes, and that trap kills this watchdog.
    kill -STOP "$test_pid"
    for p in $(descendants "$test_pid" "$self"); do kill -9 "$p" 2>/dev/null; done
    kill -TERM "$test_pid"
    kill -CONT "$test_pid"
}
e2e_watchdog "${EMBER_E2E_LIMIT:-900}" $$ &
watchdog=$!

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
# unbroken PATH: the file with each kernel message that cut into a line taken out, so that the
# line reads whole again: a guest's console interleaves its kernel's printk with what its init
# writes ("stock-init: eth0[    7.356466] IPv6: ... link becomes ready" then " leased ...").
unbroken() {
    sed -zE 's/([^\n])\[ *[0-9]+\.[0-9]+\] [^\n]*\n/\1/g' "$1"
}
expect() {  # expect FILE TEXT: a line of $work/FILE contains TEXT
    if unbroken "$work/$1" | grep -F -- "$2" > /dev/null; then echo "ok: $1: $2"; else echo "FAIL: no '$2' in $1"; failures=$((failures + 1)); fi
}
absent() {  # absent FILE TEXT: no line of $work/FILE contains TEXT
    if grep -qF -- "$2" "$work/$1"; then echo "FAIL: '$2' in $1"; failures=$((failures + 1)); else echo "ok: no '$2' in $1"; fi
}

# The API through ember's client (emberctl call; tests/e2e/CMakeLists.txt names it in $EMBERCTL),
# as a host agent drives it; a call is bounded at 300 s, as long as a large snapshot may take.
api() {  # api SOCKET METHOD PATH BODY: prints the HTTP status (000: no answer); the body, or why
    # none came, goes to $work/reply
    local status=""
    { read -r status; cat > "$work/reply"; } < <("$EMBERCTL" --sock "$1" --timeout-ms 300000 call "$2" "$3" ${4:+"$4"} 2> "$work/reply.err")
    [ -n "$status" ] || cp "$work/reply.err" "$work/reply"
    echo "${status:-000}"
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
    show_embers
    exit 1
}
show_embers() {  # where each thread of each ember in $work is, for a request or a guest that hung
    local p t; for p in $(pgrep -f -- "--api-sock $work/"); do
        for t in /proc/"$p"/task/*; do
            echo "--- $p/$(basename "$t") $(cat "$t/comm"): $(cut -d' ' -f3 "$t/stat") in $(cat "$t/wchan" 2>/dev/null)"
            head -n 8 "$t/stack" 2>/dev/null
        done
    done
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
wait_for() {  # wait_for FILE TEXT SECONDS [PID]: until a line of FILE contains TEXT, or PID ends
    local deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        unbroken "$1" 2>/dev/null | grep -F -- "$2" > /dev/null && return 0
        [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && break
        sleep 0.1
    done
    unbroken "$1" 2>/dev/null | grep -F -- "$2" > /dev/null
}

# Functions (rootfs-tools' function images): every VM has one guest IP and MAC, as FaaS hosts run
# clones, and reaches the host at $host_ip through a tap in a namespace of its own.
host_ip=172.16.0.1
guest_ip=172.16.0.2
guest_mac=06:00:ac:10:00:02
function_host_mac=02:fc:00:00:00:01
fn_args="console=ttyS0 reboot=k panic=-1 nomodule i8042.noaux i8042.nomux i8042.nopnp ip=$guest_ip::$host_ip:255.255.255.0::eth0:off"
make_ns() {  # make_ns NAME TAP MAC [UID]: a namespace whose TAP is the host side of a function's
    # network; with UID, that user (a jailed ember's) may open the tap
    ip netns add "$1"
    extra_ns+=("$1")
    ip -n "$1" link set lo up
    ip netns exec "$1" ip tuntap add dev "$2" mode tap ${4:+user "$4"}
    ip -n "$1" link set "$2" address "$3"
    ip -n "$1" addr add "$host_ip/24" dev "$2"
    ip -n "$1" link set "$2" up
}
# python_image: prints the path of the Python function image (rootfs-tools/build-python-function),
# read-only, which every VM shares; or says why not and fails. Built on the host beforehand where
# this runs nested (tests/run-all does): there apt is slow and offline.
python_image() {
    local root
    root=$("$repo/rootfs-tools/build-python-function" --cached 2> /dev/null ||
           "$repo/rootfs-tools/build-python-function" | tail -n 1) ||
        { echo "FAIL: could not build the Python function image" >&2; return 1; }
    echo "$root/python-function.ext4"
}
first_answer() {  # first_answer NS: retries until the function answers (120 s); prints the body
    local body deadline=$((SECONDS + 120))
    while [ "$SECONDS" -lt "$deadline" ]; do
        body=$(ip netns exec "$1" curl -s --connect-timeout 1 --max-time 2 "http://$guest_ip:8080/") && [ -n "$body" ] && { echo "$body"; return 0; }
        sleep 0.5
    done
    return 1
}
field() {  # field JSON NAME
    sed -n "s/.*\"$2\": \"\{0,1\}\([^\",}]*\).*/\1/p" <<< "$1"
}
check() {  # check DESCRIPTION CONDITION...
    local what=$1; shift
    if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

# may_retry ATTEMPT WHAT CONSOLE LOG: whether a boot that failed may be tried again. Under the
# nested runner (EMBER_NESTED=1) a boot has been seen to stop at a random point of the kernel's own
# start (issue 9; CI runs of stops 29, 30 and 38 met one): there the first such boot is tried once
# more, and said; a second one fails the test, and on any KVM not emulated nothing is retried.
may_retry() {
    [ "${EMBER_NESTED:-}" = 1 ] && [ "$1" = 1 ] || return 1
    echo "RETRY: $2 under the nested runner; its end:"
    tail -n 3 "$3"; tail -n 1 "$4"
}

# configure_function SOCKET KERNEL DISK MIB: a function VM's machine, kernel, read-only root disk
# and eth0 on tap0, with paths as that ember sees them (a jail's, for a jailed one).
configure_function() {
    must 204 api "$1" PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": $4}"
    must 204 api "$1" PUT /boot-source "{\"kernel_image_path\": \"$2\", \"boot_args\": \"$fn_args\"}"
    must 204 api "$1" PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$3\", \"is_root_device\": true, \"is_read_only\": true}"
    must 204 api "$1" PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"$guest_mac\"}"
}

# boot_a NS TEXT SECONDS CONFIGURE [ARG...]: ember in NS on $work/a.sock (its pid in $pid_a),
# set up by `CONFIGURE $work/a.sock ARG...`, started ($boot_start: when, in ns), until its console
# says TEXT; tried once more where may_retry allows, and otherwise the test fails here.
boot_a() {
    local ns_a=$1 text=$2 seconds=$3 attempt
    shift 3
    for attempt in 1 2; do
        rm -f "$work/a.sock" "$work/console_a"
        ip netns exec "$ns_a" "$ember" --api-sock "$work/a.sock" --serial-out "$work/console_a" 2> "$work/log_a" &
        pid_a=$!
        api_up "$work/a.sock"
        "$@" "$work/a.sock"
        boot_start=$(date +%s%N)
        must 204 api "$work/a.sock" PUT /actions '{"action_type": "InstanceStart"}'
        wait_for "$work/console_a" "$text" "$seconds" "$pid_a" && return 0
        may_retry "$attempt" "the guest did not say '$text'" "$work/console_a" "$work/log_a" || break
        kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null
    done
    echo "FAIL: the guest never said '$text'"; tail -n 30 "$work/console_a"; cat "$work/log_a"; show_embers
    exit 1
}

# boot_function NS DISK MIB: boots a function image in NS (its tap0, the function's host MAC), as
# boot_a does, until its init says the function is ready.
boot_function() {
    boot_a "$1" "fn: ready on $guest_ip:8080" 600 configure_function_on "$kernel" "$2" "$3"
}
configure_function_on() {  # configure_function_on KERNEL DISK MIB SOCKET, for boot_a
    configure_function "$4" "$1" "$2" "$3"
}
