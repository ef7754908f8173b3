// The VMM: builds a VM from a VmConfig (memory, kernel, boot structures, legacy devices, vCPUs)
// and runs it. The thread that calls run() is the VMM thread: it owns the event loop, the
// lifecycle state, and the back-end side of devices (draining serial output, feeding serial
// input, termination signals). vCPU threads own nothing but their Vcpu; what they share with the
// VMM thread is named in vmm/README.md.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/actions.h"
#include "core/arch/x86_64/kernel_loader.h"
#include "core/base/error.h"
#include "core/base/event_fd.h"
#include "core/config/vm_config.h"
#include "core/config/vm_state.h"
#include "core/devices/bus.h"
#include "core/event_loop/event_loop.h"
#include "core/memory/guest_memory.h"
#include "snapshot/machine_state.h"
#include "snapshot/working_set.h"
#include "vmm/machine/device_layout.h"
#include "vmm/machine/prepared_vm.h"
#include "vmm/machine/vcpu_thread.h"
#include "vmm/machine/vmm_options.h"

namespace ember {

class BootTimer;
class Console;
class I8042;
class IrqFd;
class Serial;
class SleepControl;
struct I8042Counters;
struct SerialCounters;
namespace virtio {
class Interrupt;
class MmioTransport;
class VirtioDevice;
}  // namespace virtio
namespace snapshot {
class RestoredMemory;
struct DecodedSnapshot;
struct TaggedDevice;
}  // namespace snapshot

inline constexpr uint64_t kMiB = 1 << 20;

struct VmExitStatus {
    ExitReason reason;
    std::string detail;
    int exit_code() const { return reason == ExitReason::Error ? 1 : 0; }
    std::string describe() const;
};

class Vmm : public ExitSink {
  public:
    // With `prepared`, the VM is built on it (prepared_vm.h); without, from nothing.
    static Result<std::unique_ptr<Vmm>> create(const ValidVmConfig& config, VmmOptions options,
                                               std::optional<PreparedVm> prepared = {});
    ~Vmm() override;

    // Rebuilds a VM from a snapshot's state file and memory file (mapped MAP_PRIVATE), without
    // starting it (`load.resume_vm` is the caller's). `network_overrides` point a clone's
    // interfaces at other taps; a working set's pages are in place before this returns.
    static Result<std::unique_ptr<Vmm>> restore(const LoadSnapshot& load, VmmOptions options,
                                                std::optional<PreparedVm> prepared = {});

    // Starts the vCPUs; with `paused`, they stop before running a guest instruction.
    Result<void> start(bool paused = false);
    // With the VM paused: writes its state file and a Full memory file, or with `diff` only the
    // pages written since the last snapshot.
    Result<void> save_snapshot(const std::string& state_path, const std::string& memory_path,
                               bool diff = false);
    // For a restored VM, running or paused: writes the pages it has touched since its load, as
    // the snapshot holds them, to a working set at `path` (snapshot/working_set.h).
    Result<snapshot::WorkingSetCounts> record_working_set(const std::string& path) const;
    // Runs the VMM thread's loop until the VM ends, then finish().
    VmExitStatus run();
    // Stops the vCPUs, flushes the console and says why the VM ended; for an owner that ran the
    // loop itself.
    VmExitStatus finish();

    // Stop and restart every vCPU; pause() returns once all have acknowledged and the console
    // has been given what they printed. A vCPU that has not stopped within kPauseBound (it waits
    // inside KVM_RUN, on guest memory whose file system does not answer) fails the pause, and the
    // others run on: the VM stays running, and the VMM thread serves on.
    static constexpr std::chrono::seconds kPauseBound{2};
    Result<void> pause();
    void resume();
    VmState state() const { return state_; }

    void request_exit(ExitReason reason, std::string detail) override;
    bool exit_requested() const override { return exit_requested_.load(std::memory_order_acquire); }
    bool is_guest_ram(uint64_t gpa) const override { return memory_.slice(gpa, 1).has_value(); }
    std::string guest_memory_failure() const override;
    Result<void> send_ctrl_alt_del();

    const GuestMemory& memory() const { return memory_; }
    // What the VM runs as: what it was built from (for a restored VM, the snapshot's, with network
    // overrides), each device's entry as the device has it now (an io_engine it fell back to,
    // what an update gave it). Assembled when asked: the devices keep the one live copy.
    VmConfig config() const;
    uint64_t serial_bytes_dropped() const;
    SerialCounters serial_counters() const;
    I8042Counters i8042_counters() const;
    const std::vector<std::unique_ptr<VcpuThread>>& vcpus() const { return vcpus_; }
    // The virtio devices, in slot order (the root drive first).
    std::vector<const virtio::VirtioDevice*> virtio_devices() const;
    // PATCH after boot, on the VMM thread: the device of the update's kind and id changes at once,
    // and config() with it.
    Result<void> update_device(const UpdateDevice& update);

    // Only create() can make the key, so only create() builds a Vmm (through make_unique).
    class Key {
        friend class Vmm;
        Key() = default;
    };
    Vmm(Key, VmmOptions options, Kvm kvm, Vm vm, GuestMemory memory,
        std::optional<EventLoop> own_loop, EventFd exit_event);

  private:
    static Result<std::unique_ptr<Vmm>> build(const ValidVmConfig& config, VmmOptions options,
                                              int memory_fd, std::optional<PreparedVm> prepared);
    // What a restore does once guest memory is in place, however it got there.
    Result<void> restore_state(const snapshot::DecodedSnapshot& snap);
    std::vector<snapshot::GuestRange> what_ember_touches() const;
    // What the paused VM is made of, its devices quiesced.
    Result<snapshot::MachineState> capture();
    Result<void> load_guest(const VmConfig& config);
    Result<void> create_devices(const VmConfig& config);
    Result<void> create_vcpus(const VmConfig& config, const std::vector<VcpuState>* restored);
    Result<void> watch_fds();
    // A restored VM's new generation ID (where it has one), announced on the Generic Event
    // Device's line.
    Result<void> renew_generation_id();
    // Every device a snapshot keeps, in the order their sections are written.
    std::vector<snapshot::TaggedDevice> persistent_devices() const;
    void stop_vcpus();

    VmmOptions options_;
    Kvm kvm_;
    Vm vm_;
    GuestMemory memory_;
    std::optional<EventLoop> own_loop_;
    EventLoop* loop_;
    EventFd exit_event_;
    VmConfig config_;  // as built; devices' entries are read from the devices (config())
    std::vector<kvm_cpuid_entry2> cpuid_;  // KVM's supported set, before per-vCPU topology
    std::vector<std::vector<kvm_cpuid_entry2>> vcpu_cpuid_;  // what each vCPU was given
    std::optional<ReadyVcpu> boot_vcpu_;  // a prepared VM's, until create_vcpus() takes it
    std::unique_ptr<snapshot::RestoredMemory> restored_;  // a restored VM's
    x86::KernelImage kernel_;

    Bus pio_bus_;
    Bus mmio_bus_;
    std::vector<std::unique_ptr<IrqFd>> irqs_;
    std::unique_ptr<Console> console_;
    std::unique_ptr<Serial> serial_;
    std::unique_ptr<I8042> i8042_;
    std::unique_ptr<BootTimer> boot_timer_;
    std::unique_ptr<SleepControl> sleep_control_;
    // Where the guest's generation ID lives, for a VM booted with ACPI tables (or restored from
    // one): a restore writes a new one there and raises the GED's interrupt.
    std::optional<snapshot::GenerationIdPlace> generation_id_;
    bool named_unclassified_msrs_ = false;  // a snapshot said once which MSRs it cannot place

    // One virtio-mmio device: its interrupt line, the device and the transport in front of it.
    struct VirtioMmio {
        VirtioSlot slot;
        std::unique_ptr<IrqFd> irq;
        std::unique_ptr<virtio::Interrupt> interrupt;
        std::unique_ptr<virtio::VirtioDevice> device;
        std::unique_ptr<virtio::MmioTransport> transport;
    };
    // Hands the configuration and state, or the state alone, to options_.published.
    void publish() const;
    // Marks the end of a step of its start or restore in options_.phases, if any.
    void mark(const char* step) const;
    void publish_state() const;
    std::vector<VirtioSlot> virtio_plan_;
    std::vector<VirtioMmio> virtio_;

    std::vector<std::unique_ptr<VcpuThread>> vcpus_;
    std::atomic<VmState> state_{VmState::NotStarted};

    std::mutex exit_mutex_;
    std::optional<VmExitStatus> exit_status_;
    std::atomic<bool> exit_requested_{false};
};

}  // namespace ember
