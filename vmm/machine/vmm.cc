#include "vmm/machine/vmm.h"
#include "vmm/machine/templated_cpu.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/arch/x86_64/acpi.h"
#include "core/arch/x86_64/cpuid.h"
#include "core/arch/x86_64/lapic.h"
#include "core/arch/x86_64/layout.h"
#include "core/arch/x86_64/msrs.h"
#include "core/arch/x86_64/regs.h"
#include "core/base/file_io.h"
#include "core/base/log.h"
#include "core/base/phase_times.h"
#include "core/devices/boot_timer.h"
#include "core/devices/i8042.h"
#include "core/devices/serial.h"
#include "core/devices/sleep_control.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/restore/restored_memory.h"
#include "virtio/mmio/mmio_transport.h"
#include "vmm/machine/console.h"
#include "vmm/machine/irq_fd.h"
#include "vmm/machine/published_vm.h"
#include "vmm/machine/virtio_kinds.h"

namespace ember {

std::string VmExitStatus::describe() const {
    switch (reason) {
        case ExitReason::GuestReset: return "guest reset the VM (" + detail + ")";
        case ExitReason::GuestPowerOff: return "guest powered off (" + detail + ")";
        case ExitReason::TripleFault: return "guest triple-faulted (" + detail + ")";
        case ExitReason::GuestHalted: return "guest halted (" + detail + ")";
        case ExitReason::Signal: return "stopped by " + detail;
        case ExitReason::Error: return "error: " + detail;
    }
    return detail;
}

Vmm::Vmm(Key, VmmOptions options, Kvm kvm, Vm vm, GuestMemory memory,
         std::optional<EventLoop> own_loop, EventFd exit_event)
    : options_(std::move(options)),
      kvm_(std::move(kvm)),
      vm_(std::move(vm)),
      memory_(std::move(memory)),
      own_loop_(std::move(own_loop)),
      loop_(own_loop_ ? &*own_loop_ : options_.loop),
      exit_event_(std::move(exit_event)) {}

Vmm::~Vmm() {
    stop_vcpus();
    // The devices end before the memory, as members would; a device that left requests to the
    // kernel leaves the memory reserved, so that no later mapping takes what they may write into.
    bool memory_lent = false;
    for (auto& d : virtio_) memory_lent |= !d.device->end();
    virtio_.clear();
    if (memory_lent) memory_.retire();
}

// The parts a new VM and a restored one share: KVM, memory (fresh, or mapped from a snapshot's
// memory file), the in-kernel irqchip and PIT, the event loop, the device plan.
Result<std::unique_ptr<Vmm>> Vmm::build(const ValidVmConfig& valid, VmmOptions options,
                                        int memory_fd, std::optional<PreparedVm> prepared) {
    const VmConfig& config = valid;
    PhaseTimes* phases = options.phases;
    if (!prepared) {
        auto made = prepare_vm(options.kvm_path);
        EMBER_TRY(made);
        prepared = std::move(*made);
        if (phases) phases->mark("KVM VM");
    }
    const Vm& vm = prepared->vm;
    const uint64_t mem_bytes = uint64_t{config.machine.mem_size_mib} * kMiB;
    auto regions = x86::ram_regions(mem_bytes);
    const HugePages pages = config.machine.huge_pages;
    const uint64_t page_size = memory_fd >= 0 ? kGuestPageSize : page_size_of(pages);
    auto ready = take_ready_memory(*prepared, regions, page_size, memory_fd);
    EMBER_TRY(ready);
    const bool slots_in = ready->has_value();
    auto memory = slots_in         ? Result<GuestMemory>(std::move(**ready))
                  : memory_fd >= 0 ? GuestMemory::map_file(regions, memory_fd)
                                   : GuestMemory::create_anonymous(regions, page_size);
    EMBER_TRY(memory, pages == HugePages::None
                          ? std::string("machine-config.mem_size_mib")
                          : "machine-config.huge_pages \"" + std::string(name_of(pages)) + "\"");
    // Memory goes in before the irqchip where the VM has none yet (see prepared_vm.h).
    // With track_dirty_pages KVM logs the pages the guest writes, for Diff snapshots: a slot
    // already in takes the flag as a change of its flags alone.
    const uint32_t flags = config.machine.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    if (flags) memory->enable_dirty_tracking();
    uint32_t slot = 0;
    for (const auto& r : memory->regions()) {
        if (!slots_in || flags)
            EMBER_TRY(
                vm.set_user_memory_region(slot, r.guest_addr, r.size(), r.mapping.data(), flags));
        ++slot;
    }
    if (slots_in) log::info("guest memory: in the KVM slot made ahead");
    if (phases) phases->mark("guest memory");
    if (!prepared->has_platform()) {
        EMBER_TRY(create_platform(vm));
        if (phases) phases->mark("irqchip and PIT");
    }

    std::optional<EventLoop> loop;
    if (options.loop == nullptr) {
        auto created = EventLoop::create();
        EMBER_TRY(created);
        loop = std::move(*created);
    }
    auto exit_event = EventFd::create();
    EMBER_TRY(exit_event);

    auto vmm = std::make_unique<Vmm>(Key{}, std::move(options), std::move(prepared->kvm),
                                     std::move(prepared->vm), std::move(*memory), std::move(loop),
                                     std::move(*exit_event));
    vmm->config_ = config;
    vmm->cpuid_ = std::move(prepared->supported_cpuid);
    vmm->boot_vcpu_ = std::move(prepared->boot_vcpu);
    auto plan = plan_virtio_slots(config, vmm->options_.boot_timer, vmm->options_.virtio_kinds);
    EMBER_TRY(plan);
    vmm->virtio_plan_ = std::move(*plan);
    return vmm;
}

Result<std::unique_ptr<Vmm>> Vmm::create(const ValidVmConfig& valid, VmmOptions options,
                                         std::optional<PreparedVm> prepared) {
    const VmConfig& config = valid;
    if (!config.boot_source) return fail("boot-source: no kernel configured");
    auto vmm = build(valid, std::move(options), -1, std::move(prepared));
    EMBER_TRY(vmm);
    if (config.cpu_config) {
        EMBER_TRY(check_kvm_capabilities((*vmm)->kvm_, *config.cpu_config));
        auto templated = templated_cpuid(std::move((*vmm)->cpuid_), *config.cpu_config);
        EMBER_TRY(templated);
        (*vmm)->cpuid_ = std::move(*templated);
    }
    EMBER_TRY((*vmm)->load_guest(config));
    (*vmm)->mark("kernel and boot tables");
    EMBER_TRY((*vmm)->create_devices(config));
    (*vmm)->mark("devices");
    EMBER_TRY((*vmm)->create_vcpus(config, nullptr));
    EMBER_TRY((*vmm)->watch_fds());
    (*vmm)->mark("vCPUs");
    return vmm;
}
Result<void> Vmm::create_devices(const VmConfig& config) {
    auto console = Console::create(options_.serial_out_fd, options_.serial_in_fd);
    EMBER_TRY(console);
    console_ = std::move(*console);

    auto com1_irq = IrqFd::create(vm_, kCom1Gsi);
    EMBER_TRY(com1_irq);
    serial_ = std::make_unique<Serial>(**com1_irq, console_->output());
    irqs_.push_back(std::move(*com1_irq));
    EMBER_TRY(pio_bus_.insert(*serial_, kCom1Base, kCom1Length));

    auto kbd_irq = IrqFd::create(vm_, kKeyboardGsi);
    EMBER_TRY(kbd_irq);
    i8042_ = std::make_unique<I8042>(**kbd_irq, [this] {
        request_exit(ExitReason::GuestReset, "reset through the i8042 keyboard controller");
    });
    irqs_.push_back(std::move(*kbd_irq));
    EMBER_TRY(pio_bus_.insert(*i8042_, kI8042Base, kI8042Length));

    sleep_control_ = std::make_unique<SleepControl>(x86::kSleepTypeS5, [this] {
        request_exit(ExitReason::GuestPowerOff, "ACPI S5 through the sleep control register");
    });
    if (auto r = pio_bus_.insert(*sleep_control_, x86::kSleepControlPort, kSleepRegistersLength);
        !r)
        return r;

    if (options_.boot_timer) {
        boot_timer_ = std::make_unique<BootTimer>(options_.start_time, options_.start_cpu_us);
        EMBER_TRY(mmio_bus_.insert(*boot_timer_, x86::kMmioGapStart, x86::kMmioSlotSize));
    }
    for (const auto& slot : virtio_plan_) {
        VirtioMmio d{slot, {}, {}, {}, {}};
        auto irq = IrqFd::create(vm_, slot.gsi);
        EMBER_TRY(irq);
        d.irq = std::move(*irq);
        d.interrupt = std::make_unique<virtio::Interrupt>(*d.irq);
        auto device = slot.kind->create(config, slot.index, memory_, *d.interrupt);
        EMBER_TRY(device);
        d.device = std::move(*device);
        if (d.device->kind() != slot.kind->name)
            return fail("a device of kind '" + std::string(slot.kind->name) + "' calls itself '" +
                        std::string(d.device->kind()) + "'");
        auto transport =
            virtio::MmioTransport::create(*d.device, *d.interrupt, memory_, &vm_, slot.base);
        EMBER_TRY(transport);
        d.transport = std::move(*transport);
        EMBER_TRY(mmio_bus_.insert(*d.transport, slot.base, x86::kMmioSlotSize));
        virtio_.push_back(std::move(d));
    }
    return {};
}

uint64_t Vmm::serial_bytes_dropped() const {
    return console_->dropped();
}

std::vector<snapshot::TaggedDevice> Vmm::persistent_devices() const {
    std::vector<snapshot::TaggedDevice> out{{serial_.get(), {"serial", "serial"}},
                                            {i8042_.get(), {"i8042", "i8042"}}};
    for (const auto& d : virtio_)
        out.push_back({d.transport.get(),
                       {std::string(d.device->kind()), d.device->id(), d.slot.base, d.slot.gsi}});
    return out;
}

std::vector<const virtio::VirtioDevice*> Vmm::virtio_devices() const {
    std::vector<const virtio::VirtioDevice*> out;
    out.reserve(virtio_.size());
    for (const auto& d : virtio_) out.push_back(d.device.get());
    return out;
}

Result<void> Vmm::update_device(const UpdateDevice& update) {
    for (auto& d : virtio_) {
        if (d.device->kind() != update.kind || d.device->id() != update.id) continue;
        auto changed = d.device->update(update.change);
        EMBER_TRY(changed);
        if (*changed) d.transport->config_changed();
        publish();
        return {};
    }
    for (const auto* kind : options_.virtio_kinds)
        if (kind->name == update.kind)
            return fail(std::string(kind->noun) + " '" + update.id + "': no such " +
                        std::string(kind->noun));
    return fail("no device of kind '" + update.kind + "'");
}

VmConfig Vmm::config() const {
    VmConfig c = config_;
    for (const auto& d : virtio_)
        if (d.slot.kind->record) d.slot.kind->record(c, d.slot.index, *d.device);
    return c;
}

Result<void> Vmm::create_vcpus(const VmConfig& config, const std::vector<VcpuState>* restored) {
    const auto msrs = x86::boot_msrs();
    const x86::CpuTopology topology{config.machine.vcpu_count, config.machine.smt};
    install_kick_handler();
    // Read once for all: every vCPU KVM makes runs at its VM's rate.
    std::optional<uint32_t> tsc_khz = boot_vcpu_ ? boot_vcpu_->tsc_khz : std::nullopt;
    for (uint32_t id = 0; id < config.machine.vcpu_count; ++id) {
        const std::vector<kvm_cpuid_entry2> cpuid =
            restored ? (*restored)[id].cpuid : x86::guest_cpuid(cpuid_, id, topology);
        std::optional<ReadyVcpu> ready =
            id == 0 ? std::exchange(boot_vcpu_, std::nullopt) : std::nullopt;
        const bool cpuid_in_place = ready && same_cpuid(ready->cpuid, cpuid);
        auto vcpu = ready ? Result<Vcpu>(std::move(ready->vcpu)) : vm_.create_vcpu(id);
        EMBER_TRY(vcpu);
        const std::string who = "vCPU " + std::to_string(id);
        vcpu_cpuid_.push_back(cpuid);
        if (restored) {
            if (!tsc_khz)
                if (auto khz = vcpu->get_tsc_khz()) tsc_khz = *khz;
            EMBER_TRY(
                restore_vcpu(*vcpu, (*restored)[id],
                             {.fresh = true, .cpuid_in_place = cpuid_in_place, .tsc_khz = tsc_khz}),
                who);
            vcpus_.push_back(std::make_unique<VcpuThread>(std::move(*vcpu), pio_bus_, mmio_bus_,
                                                          *this, options_.vcpu_filter));
            continue;
        }
        if (!cpuid_in_place) EMBER_TRY(vcpu->set_cpuid(cpuid), who);
        if (config.cpu_config) EMBER_TRY(apply_msr_modifiers(*vcpu, *config.cpu_config), who);
        EMBER_TRY(vcpu->set_msrs(msrs), who);
        EMBER_TRY(x86::setup_fpu(*vcpu), who);
        EMBER_TRY(x86::setup_lapic(*vcpu), who);
        // Application processors wait for INIT/SIPI from the kernel; only the BSP starts at the
        // entry.
        if (id == 0) {
            EMBER_TRY(x86::setup_boot_vcpu_registers(*vcpu, kernel_.protocol, kernel_.entry), who);
        }
        vcpus_.push_back(std::make_unique<VcpuThread>(std::move(*vcpu), pio_bus_, mmio_bus_, *this,
                                                      options_.vcpu_filter));
    }
    return {};
}

Result<void> Vmm::watch_fds() {
    if (auto r = loop_->add(exit_event_.fd(), EPOLLIN, [this](uint32_t) { loop_->stop(); }); !r)
        return r;
    for (auto& d : virtio_) {
        EMBER_TRY(d.transport->attach(*loop_));
        EMBER_TRY(d.device->attach(*loop_));
    }
    return console_->attach(*loop_, *serial_);
}

Result<void> Vmm::start(bool paused) {
    if (state_ != VmState::NotStarted) return fail("the VM has already been started");
    for (auto& v : vcpus_) {
        if (paused) v->request_pause();
        if (auto r = v->start(); !r) {
            // Half a VM cannot run: the vCPUs that started stop, and the caller drops the VM.
            for (auto& started : vcpus_) started->stop_and_join();
            return r;
        }
    }
    if (paused) {
        for (auto& v : vcpus_) v->wait_paused();
        state_ = VmState::Paused;
    } else {
        state_ = VmState::Running;
    }
    mark("vCPU threads");
    publish();
    return {};
}

void Vmm::mark(const char* step) const {
    if (options_.phases) options_.phases->mark(step);
}

void Vmm::publish() const {
    if (options_.published) options_.published->publish(config(), state_);
}

void Vmm::publish_state() const {
    if (options_.published) options_.published->publish(state_);
}

Result<void> Vmm::pause() {
    if (state_ != VmState::Running) return {};
    for (auto& v : vcpus_) v->request_pause();
    const auto deadline = std::chrono::steady_clock::now() + kPauseBound;
    for (auto& v : vcpus_) {
        if (v->wait_paused(deadline)) continue;
        for (auto& w : vcpus_) w->resume();
        return fail("vCPU " + std::to_string(v->vcpu().id()) + " did not stop within " +
                    std::to_string(kPauseBound.count()) +
                    " s: KVM_RUN has not returned (it may wait on guest memory the host cannot "
                    "provide yet, as from a memory file whose file system does not answer); the "
                    "microVM was not paused and runs on");
    }
    state_ = VmState::Paused;
    publish_state();
    // What the guest printed before the pause is on the console (a file, or a pipe with room)
    // by the time the pause is answered: a client that pauses and reads sees all of it.
    console_->drain();
    return {};
}

void Vmm::resume() {
    if (state_ != VmState::Paused) return;
    for (auto& v : vcpus_) v->resume();
    state_ = VmState::Running;
    publish_state();
}

void Vmm::request_exit(ExitReason reason, std::string detail) {
    {
        std::lock_guard lock(exit_mutex_);
        if (exit_status_) return;
        exit_status_ = VmExitStatus{reason, std::move(detail)};
    }
    exit_requested_.store(true, std::memory_order_release);
    exit_event_.signal();
}

Result<void> Vmm::send_ctrl_alt_del() {
    return i8042_->send_ctrl_alt_del();
}
SerialCounters Vmm::serial_counters() const {
    return serial_->counters();
}
I8042Counters Vmm::i8042_counters() const {
    return i8042_->counters();
}

std::string Vmm::guest_memory_failure() const {
    return restored_ ? restored_->failure()
                     : "the host could not give it a page (is it out of memory?)";
}

void Vmm::stop_vcpus() {
    for (auto& v : vcpus_) v->stop_and_join();
}

VmExitStatus Vmm::run() {
    if (auto r = loop_->run(); !r) request_exit(ExitReason::Error, r.error().message);
    return finish();
}

VmExitStatus Vmm::finish() {
    // An owner that stops its loop without a reason (a failure of its own) still gets a status;
    // a reason recorded earlier wins.
    request_exit(ExitReason::Signal, "the VMM's owner ended the VM");
    stop_vcpus();
    if (auto lost = restored_ ? restored_->lost_memory() : std::nullopt) {
        std::lock_guard lock(exit_mutex_);
        exit_status_ = VmExitStatus{ExitReason::Error, std::move(*lost)};
    }
    state_ = VmState::Exited;
    publish_state();
    console_->flush_at_exit();
    if (uint64_t dropped = console_->dropped())
        log::warn(std::to_string(dropped) +
                  " bytes of guest console output were dropped because the "
                  "console reader was too slow");
    std::lock_guard lock(exit_mutex_);
    return *exit_status_;
}

}  // namespace ember
