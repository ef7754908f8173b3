#!/usr/bin/env bash
# Debian's own kernels (rootfs-tools/build-stock-kernel: linux-image-cloud-amd64 and
# linux-image-amd64, unchanged) on ember, where they find their devices through ACPI: neither has
# virtio-mmio command-line devices. Each one's initramfs loads the virtio modules, mounts the root
# from virtio-blk and takes a lease over virtio-net; the kernel's log must hold no ACPI error or
# warning. The cloud kernel then powers off, which must end ember with status 0.
# The generic kernel boots once, for VMGenID as well: snapshotted while it waits, restored twice,
# one clone after the other; each clone's kernel must report the VM fork and read /dev/urandom
# bytes of its own, then power off, ending its ember with status 0 (the generic kernel's ACPI S5).
ember=$1
source "$(dirname "$0")/common.sh"
stock_args="console=ttyS0 panic=-1"

# expect_boot CONSOLE LOG: what a stock kernel's boot on ember shows, through ACPI.
expect_boot() {
    local c=$1
    expect "$c" "ACPI: RSDP 0x00000000000E0000"
    expect "$c" "ACPI: FACP 0x"
    expect "$c" "ACPI: DSDT 0x"
    expect "$c" "ACPI: APIC 0x"
    expect "$c" "smpboot: Allowing 2 CPUs"
    # Hardware-reduced ACPI has no legacy PIC, so Linux numbers ISA lines dynamically: the UART
    # and the i8042 are found through the DSDT (PNP0501, PNP0303), not by probing.
    expect "$c" "00:00: ttyS0 at I/O 0x3f8 (irq = "
    expect "$c" "i8042: PNP: PS/2 Controller [PNP0303:PS2K] at 0x60,0x64"
    expect "$c" "virtio_blk virtio0: [vda]"
    expect "$c" "stock-init: root mounted from virtio-blk"
    expect "$c" "stock-init: eth0 leased 172.30.0."
    expect "$c" "stock-init: ping 172.30.0.1 answered"
    expect "$2" "boot: ACPI tables (RSDP at 0xe0000"
}
# expect_power_off CONSOLE LOG: the guest powered off through ACPI S5.
expect_power_off() {
    expect "$1" "stock-init: powering off"
    expect "$2" "exited: guest powered off (ACPI S5 through the sleep control register)"
}
# no_kernel_errors CONSOLE: its kernel said nothing amiss, from its boot or its restore to its end.
no_kernel_errors() {
    local bad
    for bad in "ACPI Error" "ACPI Warning" "ACPI BIOS Error" "ACPI BIOS Warning" "Kernel panic"; do
        absent "$1" "$bad"
    done
}

# boot_flavour FLAVOUR: one boot to power-off; its console and log are console_FLAVOUR, log_FLAVOUR.
boot_flavour() {
    local flavour=$1 image rc start
    image=$("$repo/rootfs-tools/build-stock-kernel" "$flavour" | tail -n 1) ||
        { echo "FAIL: could not build the $flavour kernel image"; failures=$((failures + 1)); return; }
    cat > "$work/vm_$flavour.json" <<JSON
{
  "boot-source": {
    "kernel_image_path": "$image/vmlinuz",
    "initrd_path": "$image/initrd.gz",
    "boot_args": "$stock_args stock.mode=poweroff"
  },
  "drives": [{ "drive_id": "rootfs", "path_on_host": "$work/rootfs.ext4", "is_root_device": true }],
  "network-interfaces": [{ "iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02" }],
  "machine-config": { "vcpu_count": 2, "mem_size_mib": 256 }
}
JSON
    local attempt
    for attempt in 1 2; do
        start=$(date +%s)
        timeout 300 ip netns exec "$ns" "$ember" --no-api --config-file "$work/vm_$flavour.json" \
            > "$work/console_$flavour" 2> "$work/log_$flavour"
        rc=$?
        echo "$flavour boot took $(( $(date +%s) - start ))s, exit code $rc ($(cat "$image/contents"))"
        # Stock kernels (generic and cloud) under the nested runner have also triple-faulted.
        grep -qF "exited: guest powered off" "$work/log_$flavour" && break
        may_retry "$attempt" "the $flavour boot did not power off" "$work/console_$flavour" \
            "$work/log_$flavour" || break
    done
    expect_boot "console_$flavour" "log_$flavour"
    expect_power_off "console_$flavour" "log_$flavour"
    no_kernel_errors "console_$flavour"
    [ "$rc" -eq 0 ] || { echo "FAIL: ember exited with $rc"; failures=$((failures + 1)); }
}
boot_flavour cloud
stock=$("$repo/rootfs-tools/build-stock-kernel" generic | tail -n 1)

# The generic kernel's boot, and VMGenID across its clones.
configure_fork() {  # configure_fork SOCKET: the generic kernel, to wait for a VM fork
    must 204 api "$1" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
    must 204 api "$1" PUT /boot-source "{\"kernel_image_path\": \"$stock/vmlinuz\", \"initrd_path\": \"$stock/initrd.gz\", \"boot_args\": \"$stock_args stock.mode=fork\"}"
    must 204 api "$1" PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$work/rootfs.ext4\", \"is_root_device\": true}"
    must 204 api "$1" PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}'
}
boot_a "$ns" "stock-init: waiting for a VM fork" 300 configure_fork
expect_boot console_a log_a
no_kernel_errors console_a
must 204 api "$work/a.sock" PATCH /vm '{"state": "Paused"}'
must 204 api "$work/a.sock" PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$work/vm.state\", \"mem_file_path\": \"$work/vm.mem\"}"
kill -9 "$pid_a"; wait "$pid_a" 2>/dev/null; pid_a=
original=$(sed -n 's/.*stock-init: urandom \([0-9a-f]*\).*/\1/p' "$work/console_a" | tail -n 1)

clone_bytes=()
for clone in 1 2; do
    sock="$work/clone$clone.sock"
    ip netns exec "$ns" "$ember" --api-sock "$sock" --serial-out "$work/console_$clone" 2> "$work/log_clone$clone" &
    pid=$!
    api_up "$sock"
    must 204 api "$sock" PUT /snapshot/load "{\"snapshot_path\": \"$work/vm.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$work/vm.mem\"}, \"resume_vm\": true}"
    rc=0
    wait_exit "$pid" 300 || rc=$?
    [ "$rc" -eq 0 ] || { echo "FAIL: clone $clone's ember exited with $rc"; failures=$((failures + 1)); }
    expect "console_$clone" "random: crng reseeded due to virtual machine fork"
    expect "console_$clone" "stock-init: after fork 1: urandom"
    expect "log_clone$clone" "restore: a new VM generation ID, announced on GSI 3"
    expect_power_off "console_$clone" "log_clone$clone"
    no_kernel_errors "console_$clone"
    clone_bytes+=("$(sed -n 's/.*after fork 1: urandom \([0-9a-f]*\).*/\1/p' "$work/console_$clone")")
done
echo "urandom before the snapshot: $original; after the restore: ${clone_bytes[*]}"
if [ -z "$original" ] || [ -z "${clone_bytes[0]}" ] || [ -z "${clone_bytes[1]}" ] ||
    [ "${clone_bytes[0]}" = "${clone_bytes[1]}" ] || [ "${clone_bytes[0]}" = "$original" ]; then
    echo "FAIL: the clones' /dev/urandom bytes are missing or shared"
    failures=$((failures + 1))
else
    echo "ok: each clone reads its own /dev/urandom bytes"
fi

if [ "$failures" -ne 0 ]; then
    for f in log_cloud log_a log_clone1 log_clone2; do echo "--- $f"; cat "$work/$f" 2>/dev/null; done
    for f in console_cloud console_a console_1 console_2; do echo "--- $f"; tail -n 15 "$work/$f" 2>/dev/null; done
    exit 1
fi
