#!/usr/bin/env bash
# A function clone restored into a ready ember, jailed: the path a host agent that keeps embers
# waiting takes (README, "Embers kept ready"). Every ember runs in a jail (ember-jailer, uid and gid
# 10000, its network namespace through --netns), so every path the snapshot records is the jail's:
# - a pool ember is started first, in its jail, before anything exists to load, and says on its
#   --ready-fd (passed into the jail by --keep-fd, read as the README's recipe reads it) and in its
#   log that its KVM VM is ready;
# - the function image boots in a jail of its own, answers, and is paused and snapshotted there;
# - the snapshot and the function disk are linked into the pool ember's jail at the same paths, and
#   it loads them, resumed, behind a tap of its own with the function's host MAC.
# The clone answers, going on from the snapshot's invocation count and boot_id, and its ember ran
# it on the VM it had made before the load, not on a second one.
#
# ready_clone.sh EMBER JAILER
ember=$1
jailer=$2
source "$(dirname "$0")/common.sh"
id=10000
jails=$work/jails

jail_of() { echo "$jails/$(basename "$ember")/$1/root"; }
start_jailed() {  # start_jailed NAME NS [ready]: ember in jail NAME for NS, its pid in pid_NAME;
    # with "ready", its --ready-fd line goes to ready_NAME
    local keep=() ready=()
    if [ "${3:-}" = ready ]; then
        keep=(--keep-fd 3) ready=(--ready-fd 3)
        exec 3> >(cat > "$work/ready_$1")
    fi
    "$jailer" --id "$1" --exec-file "$ember" --uid "$id" --gid "$id" --chroot-base-dir "$jails" \
        --netns "/var/run/netns/$2" "${keep[@]}" -- --api-sock /run/api.sock "${ready[@]}" \
        > "$work/console_$1" 2> "$work/log_$1" &
    printf -v "pid_$1" '%s' $!
    [ "${3:-}" = ready ] && exec 3>&-
    api_up "$(jail_of "$1")/run/api.sock"
}
kvm_vms_of() {  # kvm_vms_of PID: how many KVM VM fds the process holds
    local n=0 fd
    for fd in /proc/"$1"/fd/*; do [ "$(readlink "$fd")" = anon_inode:kvm-vm ] && n=$((n + 1)); done
    echo "$n"
}

# The pool ember, waiting before there is anything to load.
make_ns "fn-$$-1" tapc1 "$function_host_mac" "$id"
start_jailed pool "fn-$$-1" ready
pool=$(jail_of pool)
wait_for "$work/ready_pool" "ready" 120 "$pid_pool" ||
    { echo "FAIL: the pool ember never said on its --ready-fd that its VM was ready"; cat "$work/log_pool"; exit 1; }
grep -qF "a KVM VM is ready" "$work/log_pool" ||
    { echo "FAIL: the pool ember said it was ready before its VM was"; cat "$work/log_pool"; exit 1; }
echo "ok: the pool ember is ready: $(grep -F "a KVM VM is ready" "$work/log_pool")"

# The function, booted in its jail with the jail's paths, answered, snapshotted there.
src=$(jail_of fn)
fill_jail() {  # what the function's jail holds before its ember starts
    rm -rf "$(dirname "$src")"
    mkdir -p "$src"
    cp "$kernel" "$src/vmlinux"
    cp --reflink=auto "$rootfs/function.ext4" "$src/function.ext4"
    chown "$id:$id" "$src/vmlinux" "$src/function.ext4"
}
fill_jail
make_ns "fn-$$-0" tap0 "$function_host_mac" "$id"
attempt=1
while :; do
    start_jailed fn "fn-$$-0"
    sock=$src/run/api.sock
    configure_function "$sock" /vmlinux /function.ext4 128
    must 204 api "$sock" PUT /actions '{"action_type": "InstanceStart"}'
    wait_for "$work/console_fn" "fn: ready on $guest_ip:8080" 600 && break
    may_retry "$attempt" "the jailed function's boot stalled" "$work/console_fn" "$work/log_fn" ||
        { echo "FAIL: the jailed function never said it was ready"; tail -n 20 "$work/console_fn"; exit 1; }
    kill -9 "$pid_fn"; wait "$pid_fn" 2> /dev/null
    fill_jail
    attempt=2
done
first=$(ip netns exec "fn-$$-0" curl -s --max-time 60 "http://$guest_ip:8080/")
check "the jailed function answers: invocation 1" [ "$(field "$first" invocation)" = 1 ]
boot_id=$(field "$first" boot_id)
must 204 api "$sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$sock" PUT /snapshot/create '{"snapshot_type": "Full", "snapshot_path": "/fn.state", "mem_file_path": "/fn.mem"}'
kill -9 "$pid_fn"; wait "$pid_fn" 2> /dev/null

# What the host agent hands the pool ember: the same files at the same paths in its jail.
ln "$src/fn.state" "$src/fn.mem" "$src/function.ext4" "$pool/"
sock=$pool/run/api.sock
vms_before=$(kvm_vms_of "$pid_pool")
load_start=$(date +%s%N)
must 204 api "$sock" PUT /snapshot/load "{\"snapshot_path\": \"/fn.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"/fn.mem\"}, \"resume_vm\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tapc1\"}]}"
body=$(first_answer "fn-$$-1") || body=
echo "the ready clone answered $(( ($(date +%s%N) - load_start) / 1000000 )) ms after its PUT /snapshot/load: $body"
check "the clone continues from the snapshot: invocation 2" [ "$(field "$body" invocation)" = 2 ]
check "the clone has the snapshot's boot_id" [ "$(field "$body" boot_id)" = "$boot_id" ]
check "the pool ember held its VM before the load ($vms_before)" [ "$vms_before" = 1 ]
check "the clone runs on that VM, not on a second one" [ "$(kvm_vms_of "$pid_pool")" = 1 ]
check "the clone runs as the jail's uid" [ "$(awk '/^Uid:/ {print $2}' "/proc/$pid_pool/status")" = "$id" ]

if [ "$failures" -ne 0 ]; then
    echo "--- pool ember log"; cat "$work/log_pool"
    echo "--- clone console"; tail -n 30 "$work/console_pool"
    echo "--- function console"; tail -n 30 "$work/console_fn"
    exit 1
fi
