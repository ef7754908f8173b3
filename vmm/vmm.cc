#include "vmm/vmm.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/lapic.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/msrs.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/base/log.h"
#include "vmm/irq_fd.h"

namespace ember {
namespace {

constexpr size_t kSerialOutputCapacity = 64 * 1024;
constexpr uint64_t kMiB = 1 << 20;
constexpr auto kFinalFlushTimeout = std::chrono::seconds(2);

template <typename T>
std::unexpected<Error> wrap(Result<T>&& r, const std::string& context) {
    return std::unexpected(std::move(r.error()).wrap(context));
}

}  // namespace

std::string VmExitStatus::describe() const {
    switch (reason) {
        case ExitReason::GuestReset: return "guest reset the VM (" + detail + ")";
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
}

Result<std::unique_ptr<Vmm>> Vmm::create(const VmConfig& config, VmmOptions options) {
    if (auto r = validate(config); !r) return std::unexpected(r.error());
    if (!config.boot_source) return fail("boot-source: no kernel configured");

    auto kvm = Kvm::open(options.kvm_path);
    if (!kvm) return std::unexpected(kvm.error());
    auto vm = kvm->create_vm();
    if (!vm) return std::unexpected(vm.error());
    const uint64_t mem_bytes = uint64_t{config.machine.mem_size_mib} * kMiB;
    auto regions = x86::ram_regions(mem_bytes);
    auto memory = GuestMemory::create_anonymous(regions);
    if (!memory) return wrap(std::move(memory), "machine-config.mem_size_mib");
    // Memory goes in before the irqchip exists: after it, each KVM_SET_USER_MEMORY_REGION waits for
    // an SRCU grace period, measured at 7-11 ms for 128 MiB here against 0.16 ms before.
    uint32_t slot = 0;
    for (const auto& r : memory->regions()) {
        if (auto res = vm->set_user_memory_region(slot++, r.guest_addr, r.size(), r.mapping.data());
            !res)
            return std::unexpected(res.error());
    }
    // KVM wants these before the vCPUs exist: pages in the MMIO gap that the CPU's virtualisation
    // needs for real-mode emulation.
    if (auto r = vm->set_identity_map_address(x86::kIdentityMapAddr); !r)
        return std::unexpected(r.error());
    if (auto r = vm->set_tss_address(x86::kTssAddr); !r) return std::unexpected(r.error());
    if (auto r = vm->create_irqchip(); !r) return std::unexpected(r.error());
    if (auto r = vm->create_pit2(); !r) return std::unexpected(r.error());

    std::optional<EventLoop> loop;
    if (options.loop == nullptr) {
        auto created = EventLoop::create();
        if (!created) return std::unexpected(created.error());
        loop = std::move(*created);
    }
    auto exit_event = EventFd::create();
    if (!exit_event) return std::unexpected(exit_event.error());

    auto vmm = std::make_unique<Vmm>(Key{}, std::move(options), std::move(*kvm), std::move(*vm),
                                     std::move(*memory), std::move(loop), std::move(*exit_event));
    auto cpuid = vmm->kvm_.supported_cpuid();
    if (!cpuid) return std::unexpected(cpuid.error());
    vmm->cpuid_ = std::move(*cpuid);
    auto plan = plan_virtio_slots(config, vmm->options_.boot_timer);
    if (!plan) return std::unexpected(plan.error());
    vmm->virtio_plan_ = std::move(*plan);
    if (auto r = vmm->load_guest(config); !r) return std::unexpected(r.error());
    if (auto r = vmm->create_devices(config); !r) return std::unexpected(r.error());
    if (auto r = vmm->create_vcpus(config); !r) return std::unexpected(r.error());
    if (auto r = vmm->watch_fds(); !r) return std::unexpected(r.error());
    return vmm;
}

Result<void> Vmm::load_guest(const VmConfig& config) {
    const auto& boot = *config.boot_source;
    const uint64_t top = memory_.regions().back().end();
    const uint32_t phys_bits = x86::physical_address_bits(cpuid_);
    if (phys_bits < 64 && top > (uint64_t{1} << phys_bits))
        return fail("machine-config.mem_size_mib: " + std::to_string(config.machine.mem_size_mib) +
                    " MiB ends at " + hex(top) + ", beyond this CPU's " +
                    std::to_string(phys_bits) + "-bit physical address space");

    auto kernel = x86::load_kernel(memory_, boot.kernel_image_path);
    if (!kernel) return wrap(std::move(kernel), "boot-source");
    kernel_ = std::move(*kernel);

    std::optional<x86::InitrdPlacement> initrd;
    if (boot.initrd_path) {
        auto placed = x86::load_initrd(memory_, kernel_, *boot.initrd_path);
        if (!placed) return wrap(std::move(placed), "boot-source");
        initrd = *placed;
    }

    cmdline_ = boot.boot_args.value_or(kDefaultBootArgs) + virtio_boot_args(config, virtio_plan_);
    std::string quirk_args = quirk_boot_args(options_.quirks, cmdline_);
    if (!quirk_args.empty()) {
        log::info("host KVM emulates guest ring 0 (kvm_pvm): added kernel arguments '" +
                  quirk_args + "'");
        cmdline_ += " " + quirk_args;
    }
    auto cmdline_size = x86::write_cmdline(memory_, cmdline_, kernel_.cmdline_max);
    if (!cmdline_size) return wrap(std::move(cmdline_size), "boot-source.boot_args");

    auto e820 = x86::e820_map(memory_.regions());
    x86::BootInfo info{e820, *cmdline_size, initrd};
    if (kernel_.protocol == x86::BootProtocol::Pvh) {
        if (auto r = x86::write_pvh_start_info(memory_, info); !r) return r;
    } else if (auto r = x86::write_zero_page(memory_, kernel_, info); !r) {
        return r;
    }
    if (auto r = x86::write_mptable(memory_, config.machine.vcpu_count); !r) return r;
    return x86::write_cpu_boot_tables(memory_, kernel_.protocol);
}

Result<void> Vmm::create_devices(const VmConfig& config) {
    auto out_ready = EventFd::create();
    if (!out_ready) return std::unexpected(out_ready.error());
    serial_out_ = std::make_unique<OutputBuffer>(kSerialOutputCapacity, std::move(*out_ready));

    auto com1_irq = IrqFd::create(vm_, kCom1Gsi);
    if (!com1_irq) return std::unexpected(com1_irq.error());
    serial_ = std::make_unique<Serial>(**com1_irq, *serial_out_);
    irqs_.push_back(std::move(*com1_irq));
    if (auto r = pio_bus_.insert(*serial_, kCom1Base, kCom1Length); !r) return r;

    auto kbd_irq = IrqFd::create(vm_, kKeyboardGsi);
    if (!kbd_irq) return std::unexpected(kbd_irq.error());
    i8042_ = std::make_unique<I8042>(**kbd_irq, [this] {
        request_exit(ExitReason::GuestReset, "reset through the i8042 keyboard controller");
    });
    irqs_.push_back(std::move(*kbd_irq));
    if (auto r = pio_bus_.insert(*i8042_, kI8042Base, kI8042Length); !r) return r;

    if (options_.boot_timer) {
        boot_timer_ = std::make_unique<BootTimer>(options_.start_time, options_.start_cpu_us);
        if (auto r = mmio_bus_.insert(*boot_timer_, x86::kMmioGapStart, x86::kMmioSlotSize); !r)
            return r;
    }
    for (const auto& slot : virtio_plan_) {
        VirtioMmio d{slot, {}, {}, {}, {}, {}};
        auto irq = IrqFd::create(vm_, slot.gsi);
        if (!irq) return std::unexpected(irq.error());
        d.irq = std::move(*irq);
        d.interrupt = std::make_unique<virtio::Interrupt>(*d.irq);
        virtio::VirtioDevice* device;
        if (slot.kind == VirtioSlot::Kind::Block) {
            auto block =
                virtio::BlockDevice::create(config.drives[slot.index], memory_, *d.interrupt, {});
            if (!block) return std::unexpected(block.error());
            d.block = std::move(*block);
            device = d.block.get();
        } else {
            auto net = virtio::NetDevice::create(config.network_interfaces[slot.index], memory_,
                                                 *d.interrupt);
            if (!net) return std::unexpected(net.error());
            d.net = std::move(*net);
            device = d.net.get();
        }
        auto transport =
            virtio::MmioTransport::create(*device, *d.interrupt, memory_, &vm_, slot.base);
        if (!transport) return std::unexpected(transport.error());
        d.transport = std::move(*transport);
        if (auto r = mmio_bus_.insert(*d.transport, slot.base, x86::kMmioSlotSize); !r) return r;
        virtio_.push_back(std::move(d));
    }
    return {};
}

const virtio::BlockDevice* Vmm::block_device(const std::string& drive_id) const {
    for (const auto& d : virtio_)
        if (d.block && d.block->id() == drive_id) return d.block.get();
    return nullptr;
}

const virtio::NetDevice* Vmm::net_device(const std::string& iface_id) const {
    for (const auto& d : virtio_)
        if (d.net && d.net->id() == iface_id) return d.net.get();
    return nullptr;
}

Result<void> Vmm::create_vcpus(const VmConfig& config) {
    const auto msrs = x86::boot_msrs();
    const x86::CpuTopology topology{config.machine.vcpu_count, config.machine.smt};
    install_kick_handler();
    for (uint32_t id = 0; id < config.machine.vcpu_count; ++id) {
        auto vcpu = vm_.create_vcpu(id);
        if (!vcpu) return std::unexpected(vcpu.error());
        const std::string who = "vCPU " + std::to_string(id);
        if (auto r = vcpu->set_cpuid(x86::guest_cpuid(cpuid_, id, topology)); !r)
            return wrap(std::move(r), who);
        if (auto r = vcpu->set_msrs(msrs); !r) return wrap(std::move(r), who);
        if (auto r = x86::setup_fpu(*vcpu); !r) return wrap(std::move(r), who);
        if (auto r = x86::setup_lapic(*vcpu); !r) return wrap(std::move(r), who);
        // Application processors wait for INIT/SIPI from the kernel; only the BSP starts at the
        // entry.
        if (id == 0) {
            if (auto r = x86::setup_boot_vcpu_registers(*vcpu, kernel_.protocol, kernel_.entry); !r)
                return wrap(std::move(r), who);
        }
        vcpus_.push_back(
            std::make_unique<VcpuThread>(std::move(*vcpu), pio_bus_, mmio_bus_, *this));
    }
    return {};
}

Result<void> Vmm::watch_fds() {
    if (auto r = loop_->add(exit_event_.fd(), EPOLLIN, [this](uint32_t) { loop_->stop(); }); !r)
        return r;
    for (auto& d : virtio_) {
        if (auto r = d.transport->attach(*loop_); !r) return r;
        if (auto r = d.block ? d.block->attach(*loop_) : d.net->attach(*loop_); !r) return r;
    }
    if (auto r = loop_->add(serial_out_->ready_fd(), EPOLLIN,
                            [this](uint32_t) {
                                serial_out_->consume_ready();
                                drain_serial_output();
                            });
        !r)
        return r;

    if (options_.serial_in_fd >= 0) {
        auto drained = EventFd::create();
        if (!drained) return std::unexpected(drained.error());
        serial_rx_drained_ = std::move(*drained);
        serial_->set_rx_drained_callback([this] { serial_rx_drained_->signal(); });
        if (auto r = loop_->add(serial_rx_drained_->fd(), EPOLLIN,
                                [this](uint32_t) {
                                    serial_rx_drained_->consume();
                                    if (!input_armed_ && options_.serial_in_fd >= 0) {
                                        input_armed_ = static_cast<bool>(
                                            loop_->modify(options_.serial_in_fd, EPOLLIN));
                                    }
                                });
            !r)
            return r;
        if (auto r = loop_->add(options_.serial_in_fd, EPOLLIN,
                                [this](uint32_t) { read_serial_input(); });
            !r)
            return std::unexpected(std::move(r.error()).wrap("serial input"));
        input_armed_ = true;
    }

    return {};
}

void Vmm::drain_serial_output() {
    auto status = serial_out_->drain_to(options_.serial_out_fd);
    if (!status) {
        log::warn(status.error().message + "; discarding guest console output from now on");
        loop_->remove(serial_out_->ready_fd());
        return;
    }
    bool blocked = *status == OutputBuffer::Drain::Blocked;
    if (blocked && !output_blocked_) {
        // Wait for the reader instead of spinning; regular files never block and never get here.
        if (loop_->add(options_.serial_out_fd, EPOLLOUT,
                       [this](uint32_t) { drain_serial_output(); }))
            output_blocked_ = true;
    } else if (!blocked && output_blocked_) {
        loop_->remove(options_.serial_out_fd);
        output_blocked_ = false;
    }
}

void Vmm::read_serial_input() {
    size_t space = serial_->rx_space();
    if (space == 0) {
        // The guest has not read what it has; wait for it to drain before taking more from the
        // host.
        (void)loop_->modify(options_.serial_in_fd, 0);
        input_armed_ = false;
        return;
    }
    uint8_t buf[Serial::kRxFifoSize];
    ssize_t n = ::read(options_.serial_in_fd, buf, space);
    if (n > 0) {
        serial_->enqueue_input(std::span(buf, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        loop_->remove(options_.serial_in_fd);
        options_.serial_in_fd = -1;
    }
}

Result<void> Vmm::start() {
    if (state_ != VmState::NotStarted) return fail("the VM has already been started");
    for (auto& v : vcpus_) v->start();
    state_ = VmState::Running;
    return {};
}

void Vmm::pause() {
    if (state_ != VmState::Running) return;
    for (auto& v : vcpus_) v->request_pause();
    for (auto& v : vcpus_) v->wait_paused();
    state_ = VmState::Paused;
}

void Vmm::resume() {
    if (state_ != VmState::Paused) return;
    for (auto& v : vcpus_) v->resume();
    state_ = VmState::Running;
}

void Vmm::request_exit(ExitReason reason, std::string detail) {
    {
        std::lock_guard lock(exit_mutex_);
        if (exit_status_) return;
        exit_status_ = VmExitStatus{reason, std::move(detail)};
    }
    exit_event_.signal();
}

void Vmm::flush_serial_output() {
    // What the guest printed last (a panic message, say) is the most useful output: wait a while
    // for a slow reader, but never forever for one that has stopped reading.
    const auto deadline = std::chrono::steady_clock::now() + kFinalFlushTimeout;
    while (true) {
        auto status = serial_out_->drain_to(options_.serial_out_fd);
        if (!status || *status == OutputBuffer::Drain::Empty) return;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{options_.serial_out_fd, POLLOUT, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            serial_out_->discard_all();
            return;
        }
    }
}

void Vmm::stop_vcpus() {
    for (auto& v : vcpus_) v->stop_and_join();
}

VmExitStatus Vmm::run() {
    if (auto r = loop_->run(); !r) request_exit(ExitReason::Error, r.error().message);
    return finish();
}

VmExitStatus Vmm::finish() {
    stop_vcpus();
    state_ = VmState::Exited;
    flush_serial_output();
    if (uint64_t dropped = serial_out_->dropped())
        log::warn(std::to_string(dropped) +
                  " bytes of guest console output were dropped because the "
                  "console reader was too slow");
    std::lock_guard lock(exit_mutex_);
    return *exit_status_;
}

}  // namespace ember
