#!/usr/bin/env bash
# Two functions on one runtime, in one store. ember boots the Python function image as a warm
# runtime alone (functions=hello: the interpreter up, no function's modules imported) and that VM is
# snapshotted and pushed. Two clones restored from it each load a function of their own (POST
# /functions/aes, /functions/resize: each imports its library and runs once), as a platform builds a
# function's snapshot from its runtime's, and each is snapshotted and pushed with --parent runtime.
# Each push must find at least half of its snapshot's bytes already in the store: the runtime's
# chunks, whole or under a patch of the pages the function changed. A clone restored from the
# store through ember-uffd (nothing of the memory file read from the host) must answer as the
# function did before its snapshot, after the store is collected with the runtime's and the other
# function's manifests gone. Prints (never asserts beyond that) what each push stored.
ember=$1
ember_uffd=$2
source "$(dirname "$0")/common.sh"
image=$(python_image) || exit 1
ember_snapshot=$(dirname "$ember_uffd")/ember-snapshot
ln -s "$image" "$work/fn-rootfs.ext4"
failures=0

ask() {  # ask NS METHOD PATH: one request, retried until it answers (120 s); prints the body
    local body deadline=$((SECONDS + 120))
    while [ "$SECONDS" -lt "$deadline" ]; do
        body=$(ip netns exec "$1" curl -s -X "$2" --connect-timeout 1 --max-time 60 "http://$guest_ip:8080$3") &&
            [ -n "$body" ] && { echo "$body"; return 0; }
        sleep 0.2
    done
    return 1
}
result_of() { sed -n 's/.*"result": \({[^}]*}\).*/\1/p' <<< "$1"; }
# push NAME STATE MEM [PARENT]: into the store; prints what ember-snapshot said
push() {
    "$ember_snapshot" push --snapshot-path "$2" --mem-file-path "$3" ${4:+--parent "$4"} \
        "file://$work/store/snapshots/$1.json" || failures=$((failures + 1))
}
# share LINE: the percentage of the snapshot's bytes the push found in the store
share() { sed -n 's/.* \([0-9]*\)% of the snapshot.s .*/\1/p' <<< "$1"; }

fn_args="$fn_args functions=hello"
make_ns "rt-$$-0" tap0 "$function_host_mac"
boot_function "rt-$$-0" "$work/fn-rootfs.ext4" 256
body=$(ask "rt-$$-0" GET /aes)
check "the runtime serves no function it has not loaded" grep -q '"error": "no function at /aes"' <<< "$body"
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/runtime.state\", \"mem_file_path\": \"$work/runtime.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null
echo "runtime: $(push runtime "$work/runtime.state" "$work/runtime.mem")"

declare -A expected
k=0
for f in aes resize; do
    k=$((k + 1))
    make_ns "rt-$$-$k" tap0 "$function_host_mac"
    ip netns exec "rt-$$-$k" "$ember" --api-sock "$work/c$k.sock" --serial-out "$work/console_c$k" 2> "$work/log_c$k" &
    pid=$!
    api_up "$work/c$k.sock"
    must 204 api "$work/c$k.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/runtime.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/runtime.mem\"}, \"resume_vm\": true}"
    body=$(ask "rt-$$-$k" POST "/functions/$f") || { echo "FAIL: clone $k never loaded $f"; tail -n 20 "$work/console_c$k"; exit 1; }
    check "clone $k loaded $f onto the runtime" grep -q "\"loaded\": \"$f\"" <<< "$body"
    body=$(ask "rt-$$-$k" GET "/$f")
    expected[$f]=$(result_of "$body")
    check "clone $k's $f answered" [ -n "${expected[$f]}" ]
    must 204 api "$work/c$k.sock" PATCH /vm '{"state": "Paused"}'
    must 204 api "$work/c$k.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/$f.state\", \"mem_file_path\": \"$work/$f.mem\"}"
    kill -9 "$pid"; wait "$pid" 2> /dev/null
    line=$(push "$f" "$work/$f.state" "$work/$f.mem" runtime)
    echo "$f: $line"
    check "the store held at least half of $f's bytes already" [ "$(share "$line")" -ge 50 ]
done

# The runtime's and the first function's snapshots removed, the store collected: what resize's
# manifest names stays, the runtime's chunks under its patches among it, and the rest goes.
rm "$work/store/snapshots/runtime.json" "$work/store/snapshots/aes.json"
before=$(ls "$work/store/chunks" | wc -l)
line=$("$ember_snapshot" gc --older-than 0 "file://$work/store") || failures=$((failures + 1))
echo "gc: $line"
after=$(ls "$work/store/chunks" | wc -l)
check "gc read the one manifest left" grep -q ": 1 manifests and 0 restores' leases name " <<< "$line"
check "gc removed what only the removed snapshots named ($before objects, then $after)" [ "$after" -lt "$before" ]

# The second function restored from the store alone: its memory through ember-uffd, lazily.
k=3
# Its drive where the host puts it, the image under the drive's id: never where the store says.
mkdir "$work/drives"
ln -s "$image" "$work/drives/rootfs"
"$ember_uffd" --socket "$work/uffd.sock" --manifest "file://$work/store/snapshots/resize.json" \
    --write-state "$work/resize-fetched.state" --drive-root "$work/drives" --cache "$work/cache" \
    2> "$work/uffd.log" &
handler=$!
for _ in $(seq 1 600); do [ -S "$work/uffd.sock" ] && break; sleep 0.1; done
make_ns "rt-$$-$k" tap0 "$function_host_mac"
ip netns exec "rt-$$-$k" "$ember" --api-sock "$work/c$k.sock" --serial-out "$work/console_c$k" 2> "$work/log_c$k" &
pid=$!
api_up "$work/c$k.sock"
# A state from a store names no tap of this host: the load names the clone's own.
must 204 api "$work/c$k.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/resize-fetched.state\", \"mem_backend\": {\"backend_type\": \"Uffd\", \"backend_path\": \"$work/uffd.sock\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}]}"
body=$(ask "rt-$$-$k" GET /resize) || { echo "FAIL: the clone from the store never answered"; tail -n 20 "$work/console_c$k"; failures=$((failures + 1)); }
check "resize from the store answers as before its snapshot" [ "$(result_of "$body")" = "${expected[resize]}" ]
check "it is the function's second call" [ "$(field "$body" invocation)" = 2 ]
kill -9 "$pid"; wait "$pid" 2> /dev/null
handler_rc=0
wait "$handler" || handler_rc=$?
cat "$work/uffd.log"
check "ember-uffd ended cleanly with its clone" [ "$handler_rc" = 0 ]

if [ "$failures" -ne 0 ]; then
    for k in 1 2 3; do echo "--- clone $k log"; cat "$work/log_c$k"; echo "--- clone $k console"; tail -n 30 "$work/console_c$k"; done
    exit 1
fi
