#!/usr/bin/env bash
# emberctl, the command line over ember's client library, drives a real kernel as a person would:
# `boot` starts an ember with ember's own kernel and rootfs (root on virtio-blk, eth0 on a tap), and
# leaves it running; `status`, `config`, `pause` and `snapshot` drive it while the kernel waits for
# a DHCP answer on a tap with no server; `stop` ends it; `restore` starts a new ember from the
# snapshot with eth0 moved to the tap that has one, and the kernel goes on to its lease, its root
# mount and init, which reboots, ending the VM. Then the snapshot is pushed into a store
# (ember-snapshot push) and `restore --manifest --on-host` does the same from it: with no view of it
# in the cache, through ember-uffd, after which the view is made in the background; then
# `restore --manifest --view` from the snapshot made whole in the cache, and `--on-host` again, from
# that view, with no ember-uffd. Mistakes are exit code 2, failures 1.
ember=$1
emberctl=$2
source "$(dirname "$0")/common.sh"
# The embers emberctl starts are not this script's jobs: they go before the namespace does.
trap 'pkill -9 -f -- "--api-sock $work/"; pkill -9 -f -- "--socket $work/"; cleanup' EXIT
ip netns exec "$ns" ip tuntap add dev tapsnap mode tap
ip -n "$ns" link set tapsnap up
# Every call's bound generous: under tests/nested/run an ember's start alone takes seconds.
ctl() { ip netns exec "$ns" "$emberctl" --timeout-ms 600000 "$@"; }

for attempt in 1 2; do
    rm -f "$work/a.sock" "$work/console_a"
    ctl --sock "$work/a.sock" boot --kernel "$kernel" --rootfs "$work/rootfs.ext4" --tap tapsnap \
        --guest-mac 06:00:ac:10:00:02 --mem 128 --boot-args "$boot_args" --ember "$ember" \
        --log "$work/log_a" --console "$work/console_a" > "$work/boot.out" ||
        { echo "FAIL: emberctl boot: $(cat "$work/boot.out")"; show_logs; exit 1; }
    wait_for "$work/console_a" "Sending DHCP requests" 300 && break
    if ! may_retry "$attempt" "the kernel did not ask for a lease" "$work/console_a" "$work/log_a"; then
        echo "FAIL: the kernel never asked for a lease"; tail -20 "$work/console_a"; show_logs; exit 1
    fi
    ctl --sock "$work/a.sock" stop
done
cat "$work/boot.out"

ctl --sock "$work/a.sock" status > "$work/status.out"
expect status.out ": Running"
ctl --sock "$work/a.sock" config > "$work/config.out"
expect config.out "interface eth0: tap tapsnap, MAC 06:00:ac:10:00:02"
expect config.out "drive rootfs: $work/rootfs.ext4, root"
ctl --sock "$work/a.sock" pause > /dev/null
ctl --sock "$work/a.sock" --json status > "$work/status.json"
expect status.json '"state":"Paused"'
ctl --sock "$work/a.sock" snapshot --state "$work/vm.state" --mem-file "$work/vm.mem" > "$work/snapshot.out" ||
    { echo "FAIL: emberctl snapshot: $(cat "$work/snapshot.out")"; show_logs; exit 1; }
ctl --sock "$work/a.sock" stop > /dev/null
rc=0; ctl --sock "$work/a.sock" status 2> "$work/gone.err" || rc=$?
check "status of a stopped ember fails with exit code 1" [ "$rc" = 1 ]
expect gone.err "cannot connect to $work/a.sock"
rc=0; ctl --sock "$work/a.sock" restore --state "$work/vm.state" 2> "$work/usage.err" || rc=$?
check "a restore without --mem-file is a mistake: exit code 2" [ "$rc" = 2 ]
expect usage.err "--state and --mem-file are required"

ctl --sock "$work/b.sock" restore --state "$work/vm.state" --mem-file "$work/vm.mem" --resume \
    --net eth0=tap0 --ember "$ember" --log "$work/log_b" --console "$work/console_b" > "$work/restore.out" ||
    { echo "FAIL: emberctl restore: $(cat "$work/restore.out")"; show_logs; exit 1; }
cat "$work/restore.out"
wait_for "$work/log_b" "exited: guest reset the VM" 300

tools=$(dirname "$ember")
"$tools/ember-snapshot" push --snapshot-path "$work/vm.state" --mem-file-path "$work/vm.mem" \
    "file://$work/store/snapshots/vm.json" ||
    { echo "FAIL: ember-snapshot push"; exit 1; }
# A restore from a store opens the snapshot's drives only in the folder it is given, at
# DIR/<drive id>: the host's file, never the one the store's state file names; and writes one
# only where it is told it may (the root file system here).
mkdir "$work/drives"
ln -s "$work/rootfs.ext4" "$work/drives/rootfs"
ctl --sock "$work/c.sock" restore --manifest "file://$work/store/snapshots/vm.json" \
    --drive-root "$work/drives" --writable-drive rootfs --cache "$work/cache" --on-host \
    --ember-snapshot "$tools/ember-snapshot" \
    --ember-uffd "$tools/ember-uffd" --resume --net eth0=tap0 \
    --ember "$ember" --log "$work/log_c" --console "$work/console_c" > "$work/restore_c.out" ||
    { echo "FAIL: emberctl restore --manifest: $(cat "$work/restore_c.out")"; cat "$work/c.sock.uffd.log"; show_logs; exit 1; }
cat "$work/restore_c.out"
wait_for "$work/log_c" "exited: guest reset the VM" 300
# The view emberctl left being made, found made (find-view exits 3 until it is).
made=0
for _ in $(seq 1200); do
    rc=0; "$tools/ember-snapshot" find-view --cache "$work/cache" --drive-root "$work/drives" \
        --writable-drive rootfs \
        "file://$work/store/snapshots/vm.json" > "$work/found.out" 2> "$work/found.err" || rc=$?
    [ "$rc" = 0 ] && { made=1; break; }
    [ "$rc" = 3 ] || break
    sleep 0.5
done
check "the view of c's snapshot was made in the background" [ "$made" = 1 ]
[ "$made" = 1 ] || cat "$work/found.err"
# And from the snapshot made whole in the cache (ember-snapshot view), through the File backend.
ctl --sock "$work/d.sock" restore --manifest "file://$work/store/snapshots/vm.json" \
    --drive-root "$work/drives" --writable-drive rootfs --cache "$work/cache" --view \
    --ember-snapshot "$tools/ember-snapshot" --resume \
    --net eth0=tap0 --ember "$ember" --log "$work/log_d" --console "$work/console_d" \
    > "$work/restore_d.out" ||
    { echo "FAIL: emberctl restore --view: $(cat "$work/restore_d.out")"; show_logs; exit 1; }
cat "$work/restore_d.out"
wait_for "$work/log_d" "exited: guest reset the VM" 300
# --on-host with the view made: from it, and no ember-uffd started.
ctl --sock "$work/e.sock" restore --manifest "file://$work/store/snapshots/vm.json" \
    --drive-root "$work/drives" --writable-drive rootfs --cache "$work/cache" --on-host \
    --ember-snapshot "$tools/ember-snapshot" \
    --ember-uffd "$tools/ember-uffd" --resume --net eth0=tap0 --ember "$ember" --log "$work/log_e" \
    --console "$work/console_e" > "$work/restore_e.out" ||
    { echo "FAIL: emberctl restore --on-host: $(cat "$work/restore_e.out")"; show_logs; exit 1; }
cat "$work/restore_e.out"
wait_for "$work/log_e" "exited: guest reset the VM" 300
check "the second --on-host restore started no ember-uffd" [ ! -e "$work/e.sock.uffd.log" ]

absent console_a "IP-Config: Got DHCP answer"
for vm in b c d e; do
    absent "console_$vm" "Linux version"
    expect "console_$vm" "IP-Config: Got DHCP answer from 172.30.0.1"
    expect "console_$vm" "VFS: Mounted root (ext4 filesystem) on device 254:0."
    expect "console_$vm" "ember-init: running as init; rebooting"
    expect "log_$vm" "exited: guest reset the VM (reset through the i8042 keyboard controller)"
done
wait_for "$work/c.sock.uffd.log" "is gone" 60
expect c.sock.uffd.log "from the store:"
if [ "$failures" -ne 0 ]; then
    show_logs; for vm in b c d e; do echo "--- console $vm"; tail -n 40 "$work/console_$vm"; done
    echo "--- ember-uffd"; cat "$work/c.sock.uffd.log"
    exit 1
fi
echo "PASS"
