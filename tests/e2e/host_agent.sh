#!/usr/bin/env bash
# The README's host agent (compiled from the README's own text) against the function image: the
# function is booted, answers, and is snapshotted; the agent, in the function's namespace with
# ember on its PATH, keeps two embers ready, restores the snapshot into one and calls the function,
# which must answer as the snapshot's clone: its second invocation, with the booted guest's boot_id.
ember=$1
host_agent=$2
source "$(dirname "$0")/common.sh"

make_ns "fn-$$-0" tap0 "$function_host_mac"
boot_function "fn-$$-0" "$rootfs/function.ext4" 128
first=$(first_answer "fn-$$-0") || { echo "FAIL: the booted function never answered"; tail -n 20 "$work/console_a"; exit 1; }
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/fn.state\", \"mem_file_path\": \"$work/fn.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2> /dev/null

answer=$(ip netns exec "fn-$$-0" env PATH="$(dirname "$ember"):$PATH" TMPDIR="$work" \
    timeout 600 "$host_agent" "$work/fn.state" "$work/fn.mem" "http://$guest_ip:8080" 2> "$work/agent.err")
rc=$?
echo "the host agent printed: $answer"
check "the host agent ends with exit code 0 ($rc: $(cat "$work/agent.err"))" [ "$rc" = 0 ]
check "the clone's function answers its second invocation" [ "$(field "$answer" invocation)" = 2 ]
check "the clone is the booted guest's" [ "$(field "$answer" boot_id)" = "$(field "$first" boot_id)" ]
check "no ember is left behind" [ -z "$(pgrep -f -- "--api-sock $work/")" ]
[ "$failures" -eq 0 ] || exit 1
echo "PASS"
