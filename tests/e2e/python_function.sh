#!/usr/bin/env bash
# A real function across a snapshot, with and without its working set. ember boots the Python
# function image (rootfs-tools/build-python-function: Debian's Python 3 with Pillow and
# cryptography, four FunctionBench-style functions warmed before they listen), every function
# answers once, and the VM is snapshotted (Full). Clone 1 is restored lazily; its answers must be
# the booted VM's, its invocation counter going on from the snapshot's; then it records its working
# set. Clone 2 is restored with that working set, and clone 3 through ember-uffd (the Uffd backend)
# with it; clone 4 through ember-uffd from a store (snapshot/store) the snapshot was pushed to, with
# its root file system from the store too (ember-store-mount), nothing of either read from the
# host's copies; all must answer the same. Clone 4's drive is the mount's file (ember-uffd
# --drive-root), not the image the snapshot's state names. (A warmed function has what it reads of its disk
# in its page cache, which is in the snapshot: the mount's counts show how little it reads.)
# Also prints (never asserts) each clone's time from load to first answer and its page faults.
ember=$1
ember_uffd=$2
source "$(dirname "$0")/common.sh"
image=$(python_image) || exit 1
functions=(json hello resize aes)

ask() {  # ask NS FUNCTION: one request; prints the JSON body
    ip netns exec "$1" curl -s --max-time 60 "http://$guest_ip:8080/$2"
}
ask_until() {  # ask_until NS FUNCTION SECONDS: retries until the function answers; prints the body
    local body deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        body=$(ip netns exec "$1" curl -s --connect-timeout 1 --max-time 60 "http://$guest_ip:8080/$2") &&
            [ -n "$body" ] && { echo "$body"; return 0; }
        sleep 0.2
    done
    return 1
}
result_of() {  # result_of JSON: the function's result object
    sed -n 's/.*"result": \({[^}]*}\).*/\1/p' <<< "$1"
}
faults_of() { awk '{print $10 + $12}' "/proc/$1/stat"; }  # minor + major

ln -s "$image" "$work/fn-rootfs.ext4"
make_ns "py-$$-0" tap0 "$function_host_mac"
boot_function "py-$$-0" "$work/fn-rootfs.ext4" 256
echo "booted: ready $(( ($(date +%s%N) - boot_start) / 1000000000 )) s after InstanceStart"

declare -A expected
n=0
for f in "${functions[@]}"; do
    t=$SECONDS
    body=$(ask_until "py-$$-0" "$f" 120) || { echo "FAIL: the booted VM's $f never answered"; tail -n 20 "$work/console_a"; exit 1; }
    n=$((n + 1))
    echo "booted: $f answered in $((SECONDS - t)) s"
    check "the booted VM's $f is invocation $n" [ "$(field "$body" invocation)" = "$n" ]
    expected[$f]=$(result_of "$body")
    echo "booted: $f: ${expected[$f]}"
done
boot_id=$(field "$body" boot_id)
check "json serialised about 1 MB" [ "$(field "${expected[json]}" bytes)" -gt 1000000 ]
check "resize made 400x300" [ "$(field "${expected[resize]}" width)x$(field "${expected[resize]}" height)" = 400x300 ]
check "aes encrypted 1 MiB" [ "$(field "${expected[aes]}" bytes)" = 1048576 ]
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/py.state\", \"mem_file_path\": \"$work/py.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null

file_load="{\"snapshot_path\": \"$work/py.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/py.mem\"}, \"resume_vm\": true"
# clone K BODY: clone K in a namespace of its own, loaded with BODY; every function must answer as
# the booted VM did, counting on from the snapshot's 4.
clone() {
    local k=$1 load_body=$2 body f start faults n=4
    make_ns "py-$$-$k" tap0 "$function_host_mac"
    ip netns exec "py-$$-$k" "$ember" --api-sock "$work/c$k.sock" --serial-out "$work/console_c$k" 2> "$work/log_c$k" &
    pid=$!
    api_up "$work/c$k.sock"
    faults=$(faults_of "$pid")
    start=$(date +%s%N)
    must 204 api "$work/c$k.sock" PUT /snapshot/load "$load_body}"
    for f in "${functions[@]}"; do
        body=$(ask_until "py-$$-$k" "$f" 120) || { echo "FAIL: clone $k's $f never answered"; tail -n 20 "$work/console_c$k"; failures=$((failures + 1)); return; }
        n=$((n + 1))
        echo "clone $k: $f answered $(( ($(date +%s%N) - start) / 1000000 )) ms after its load began"
        if [ "$n" = 5 ]; then
            echo "clone $k: first answer ($f) $(( ($(date +%s%N) - start) / 1000000 )) ms after its load began, $(( $(faults_of "$pid") - faults )) page faults of ember's"
        fi
        check "clone $k's $f is invocation $n of the snapshot's VM" [ "$(field "$body" invocation)/$(field "$body" boot_id)" = "$n/$boot_id" ]
        check "clone $k's $f answers as the booted VM did" [ "$(result_of "$body")" = "${expected[$f]}" ]
    done
}

clone 1 "$file_load"
must 204 api "$work/c1.sock" PUT /snapshot/working-set "{\"working_set_path\": \"$work/py.ws\"}"
echo "clone 1 recorded its working set (an index of $(( $(stat -c %s "$work/py.ws") / 1024 )) KiB)"
kill -9 "$pid"; wait "$pid" 2> /dev/null
clone 2 "$file_load, \"working_set_path\": \"$work/py.ws\""
echo "clone 2: $(grep -o 'the working set.s [0-9]* pages mapped for the guest before it runs' "$work/log_c2" ||
    echo "its working set left to the guest's first touches in KVM (no KVM_PRE_FAULT_MEMORY here)")"
kill -9 "$pid"; wait "$pid" 2> /dev/null
# handler_clone K STATE ARGS...: clone K loaded from STATE through ember-uffd ARGS, which must end
# cleanly with its clone.
handler_clone() {
    local k=$1 state=$2 handler handler_rc=0
    shift 2
    "$ember_uffd" --socket "$work/uffd$k.sock" "$@" 2> "$work/uffd$k.log" &
    handler=$!
    for _ in $(seq 1 600); do [ -S "$work/uffd$k.sock" ] && break; sleep 0.1; done
    # A state from a store names no tap of this host: the load names the clone's own.
    clone "$k" "{\"snapshot_path\": \"$state\", \"mem_backend\": {\"backend_type\": \"Uffd\", \"backend_path\": \"$work/uffd$k.sock\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}]"
    kill -9 "$pid"; wait "$pid" 2> /dev/null
    wait "$handler" || handler_rc=$?
    cat "$work/uffd$k.log"
    check "ember-uffd ended cleanly with clone $k" [ "$handler_rc" = 0 ]
}
handler_clone 3 "$work/py.state" --mem-file "$work/py.mem" --working-set "$work/py.ws" \
    --snapshot-path "$work/py.state"

ember_snapshot=$(dirname "$ember_uffd")/ember-snapshot
"$ember_snapshot" chunk-sizes --snapshot-path "$work/py.state" --mem-file-path "$work/py.mem" \
    --working-set "$work/py.ws" || failures=$((failures + 1))
manifest="file://$work/store/snapshots/py.json"
"$ember_snapshot" push --snapshot-path "$work/py.state" --mem-file-path "$work/py.mem" \
    --working-set "$work/py.ws" --drive rootfs "$manifest" || failures=$((failures + 1))
mkdir "$work/drives"
"$(dirname "$ember_uffd")/ember-store-mount" --manifest "$manifest" --at "$work/drives" \
    --cache "$work/cache" 2> "$work/mount.log" &
mount_pid=$!
for _ in $(seq 1 600); do [ -e "$work/drives/rootfs" ] && break; sleep 0.1; done
check "ember-store-mount serves the function's root file system" cmp -s -n 65536 "$work/drives/rootfs" "$image"
# The clone's drive is the mount's file: ember-uffd writes the state with it at DIR/<drive id>.
handler_clone 4 "$work/py4.state" --manifest "$manifest" --write-state "$work/py4.state" \
    --drive-root "$work/drives"
check "clone 4's working set came from the store's pack, by ranges" \
    grep -Eq "[1-9][0-9]* of those from [1-9][0-9]* reads of its packs" "$work/uffd4.log"
mount_rc=0
kill -TERM "$mount_pid"; wait "$mount_pid" || mount_rc=$?
cat "$work/mount.log"
check "ember-store-mount ended cleanly on SIGTERM" [ "$mount_rc" = 0 ]
check "no read of the root file system from the store failed" grep -q "reads answered, 0 failed" "$work/mount.log"

if [ "$failures" -ne 0 ]; then
    for k in 1 2 3 4; do echo "--- clone $k log"; cat "$work/log_c$k"; echo "--- clone $k console"; tail -n 30 "$work/console_c$k"; done
    exit 1
fi
