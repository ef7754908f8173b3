#!/usr/bin/env bash
# The FaaS path, end to end, through the REST API: ember boots the function image (our kernel,
# root read-only on virtio-blk, the function server on TCP 8080 configured from ip=) in its own
# network namespace and tap, and the host gets an answer. It is paused, snapshotted (Full) and
# killed. K clones (EMBER_FAAS_CLONES, default 4, under the nested runner 2) are restored at once in
# new ember processes, each in its own namespace with its own tap, named differently
# (network_overrides) but with the function's one host MAC, while guest IP and MAC are the same in
# every clone, as FaaS hosts run them. Every clone answers; each counter continues from the
# snapshot's on its own; the snapshot files are byte-identical afterwards; deleting the memory file
# does not stop the clones. Clone 2 runs where io_uring is forbidden (WITHOUT_IO_URING ENOSYS), so
# its disk and its network device fall back to a system call per request or frame, and it answers
# all the same.
#
# Also prints (never asserts) each clone's time from load to first answer, and that of one more
# clone behind a tap with another MAC, whose first answer waits for the guest's ARP entry for the
# host to age out: why the host keeps one MAC per function (README, "A function from a snapshot").
ember=$1
without_io_uring=$2
source "$(dirname "$0")/common.sh"
# Under the nested runner five Linux guests at once (four clones and the other) were where its own
# kernel died, 2 runs in 4 at one point: there two clones, one on io_uring and one on Sync, say the
# same.
default_clones=4
[ "${EMBER_NESTED:-}" = 1 ] && default_clones=2
clones=${EMBER_FAAS_CLONES:-$default_clones}
function_disk="$rootfs/function.ext4"  # read-only: the original and every clone share it

call_fn() {  # call_fn NS: one request to the function; prints its JSON body
    ip netns exec "$1" curl -s --max-time 10 "http://$guest_ip:8080/"
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
declare -A stuck  # clones whose function did not answer as it should: their console is shown
answers() {  # answers K N DESCRIPTION: clone K's function answers with invocation N
    local body status=0
    body=$(call_fn "fn-$$-$1") || status=$?
    if [ "$(field "$body" invocation)" = "$2" ]; then echo "ok: $3"; return; fi
    echo "FAIL: $3: curl exit $status, body '$body'"
    failures=$((failures + 1))
    stuck[$1]=1
}

# The original: boot, get an answer, snapshot.
make_ns "fn-$$-0" tap0 "$function_host_mac"
boot_function "fn-$$-0" "$function_disk" 128
first=$(first_answer "fn-$$-0") || { echo "FAIL: the booted function never answered"; tail -n 20 "$work/console_a"; exit 1; }
echo "cold: the booted function answered $(ms_since "$boot_start") ms after InstanceStart: $first"
boot_id=$(field "$first" boot_id)
check "the first call is invocation 1" [ "$(field "$first" invocation)" = 1 ]
check "the answer carries the guest's boot_id" [ ${#boot_id} = 36 ]
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/fn.state\", \"mem_file_path\": \"$work/fn.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null
(cd "$work" && sha256sum fn.state fn.mem > sums)
echo "snapshot: $(du -k --apparent-size "$work/fn.mem" | cut -f1) KiB memory file, $(du -k "$work/fn.mem" | cut -f1) KiB of it on disk"

# K clones at once, each in its own namespace behind a tap of another name with the function's MAC;
# one more behind a tap with another MAC.
restore() {  # restore K TAP: starts clone K in its namespace and loads the snapshot, resumed
    local prefix=()
    [ "$1" = 2 ] && prefix=("$without_io_uring" 38)
    ip netns exec "fn-$$-$1" "${prefix[@]}" "$ember" --api-sock "$work/c$1.sock" --serial-out "$work/console_c$1" \
        --metrics-path "$work/metrics_c$1" 2> "$work/log_c$1" &
    echo $! > "$work/pid_c$1"
    api_up "$work/c$1.sock"
    date +%s%N > "$work/load_start_c$1"
    must 204 api "$work/c$1.sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/fn.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/fn.mem\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"$2\"}]}"
    touch "$work/loaded_c$1"
}
other=$((clones + 1))
for k in $(seq 1 "$clones"); do make_ns "fn-$$-$k" "tapc$k" "$function_host_mac"; done
make_ns "fn-$$-$other" "tapc$other" 02:fc:00:00:00:99
restorers=()
for k in $(seq 1 "$other"); do
    restore "$k" "tapc$k" > "$work/restore_c$k" 2>&1 &
    restorers+=($!)
done
wait "${restorers[@]}"
declare -a pids
for k in $(seq 1 "$other"); do
    [ -f "$work/loaded_c$k" ] || { echo "FAIL: clone $k was not restored: $(cat "$work/restore_c$k" "$work/log_c$k")"; exit 1; }
    pids[$k]=$(cat "$work/pid_c$k")
done

# Every clone is asked at once, as a host agent would after restoring them.
askers=()
for k in $(seq 1 "$other"); do
    ( first_answer "fn-$$-$k" > "$work/first_c$k" && ms_since "$(cat "$work/load_start_c$k")" > "$work/first_ms_c$k" ) &
    askers+=($!)
done
wait "${askers[@]}"
for k in $(seq 1 "$other"); do
    body=$(cat "$work/first_c$k")
    [ -n "$body" ] || { echo "FAIL: clone $k never answered"; cat "$work/log_c$k"; failures=$((failures + 1)); continue; }
    mac="the function's host MAC"; [ "$k" = "$other" ] && mac="another host MAC"
    echo "clone $k ($mac): first answer $(cat "$work/first_ms_c$k") ms after its PUT /snapshot/load: $body"
    check "clone $k continues from the snapshot: invocation 2" [ "$(field "$body" invocation)" = 2 ]
    check "clone $k has the snapshot's boot_id" [ "$(field "$body" boot_id)" = "$boot_id" ]
done
for k in $(seq 1 "$clones"); do
    answers "$k" 3 "clone $k counts on its own: invocation 3"
done
check "the snapshot files are unchanged by the clones" sh -c "cd '$work' && sha256sum --quiet -c sums"
check "clone 2's network device fell back to Sync" grep -qF "network interface 'eth0': io_uring is unavailable" "$work/log_c2"
check "clone 2's disk fell back to Sync" grep -qF "drive 'rootfs': io_uring is unavailable" "$work/log_c2"
# Clone 1's network device runs on io_uring where io_uring works and the kernel's tap takes
# RWF_NOWAIT reads through it: seen from 6.12 (the nested runner's) to 6.18, and not on Debian 12's
# 6.1; said elsewhere.
kernel=$(uname -r)
if printf '6.12\n%s\n' "${kernel%%-*}" | sort -V -C &&
    { "$ember" --check-host || true; } | grep -q '^io_uring: ok'; then
    check "clone 1's network device runs on io_uring (Linux $kernel)" \
        sh -c "! grep -qF \"network interface 'eth0': io_uring is unavailable\" '$work/log_c1'"
else
    echo "clone 1's network device: $(grep -F "network interface 'eth0': io_uring" "$work/log_c1" || echo "on io_uring")"
fi

rm "$work/fn.mem"
for k in $(seq 1 "$clones"); do
    answers "$k" 4 "clone $k answers after its memory file is deleted: invocation 4"
done

# Clone 1's tap disappears while the function is about to answer: an empty connection gets the
# server's 400 after its 5 s read timeout, which the guest then cannot send. The clone keeps
# running, answers its API, and counts what it could not send.
ip netns exec "fn-$$-1" bash -c "exec 3<> /dev/tcp/$guest_ip/8080; sleep 60" &
holder=$!
for _ in $(seq 1 100); do
    ip netns exec "fn-$$-1" ss -Htn state established dst "$guest_ip" | grep -q . && break
    sleep 0.1
done
ip -n "fn-$$-1" link del tapc1
tx_failed=0
for _ in $(seq 1 120); do
    must 204 api "$work/c1.sock" PUT /actions '{"action_type": "FlushMetrics"}'
    # Firecracker's net_<iface> group; each line counts what happened since the previous one.
    tx_failed=$(tail -n 1 "$work/metrics_c1" | sed -n 's/.*"net_eth0":{[^}]*"tx_fails":\([0-9]*\).*/\1/p')
    [ "${tx_failed:-0}" -gt 0 ] && break
    sleep 0.5
done
check "clone 1 counts the frames its missing tap could not take ($tx_failed)" [ "${tx_failed:-0}" -gt 0 ]
check "clone 1 still answers its API" [ "$(api "$work/c1.sock" GET /)" = 200 ]
kill "$holder" 2> /dev/null; wait "$holder" 2> /dev/null
for k in $(seq 2 "$clones"); do
    answers "$k" 5 "clone $k still answers: invocation 5"
done
for k in $(seq 1 "$other"); do
    kill -0 "${pids[$k]}" 2> /dev/null || { echo "FAIL: clone $k is gone: $(cat "$work/log_c$k")"; failures=$((failures + 1)); }
done

if [ "$failures" -ne 0 ]; then
    echo "--- console of the original"; tail -n 30 "$work/console_a"
    for k in $(seq 1 "$other"); do echo "--- clone $k log"; cat "$work/log_c$k"; done
    for k in "${!stuck[@]}"; do
        api "$work/c$k.sock" PUT /actions '{"action_type": "FlushMetrics"}' > /dev/null
        echo "--- clone $k metrics"; tail -n 1 "$work/metrics_c$k"; echo
        echo "--- clone $k console"; tail -n 30 "$work/console_c$k"
        echo "--- clone $k namespace"; ip netns exec "fn-$$-$k" ip -s link show "tapc$k"
        ip netns exec "fn-$$-$k" ip neigh; ip netns exec "fn-$$-$k" ss -tn
    done
    exit 1
fi
