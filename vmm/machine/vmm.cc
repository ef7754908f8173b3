#include "vmm/machine/vmm.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "snapshot/devices.h"
#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/lapic.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/msrs.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/base/atomic_file.h"
#include "vmm/base/file_io.h"
#include "vmm/base/log.h"
#include "vmm/machine/console.h"
#include "vmm/machine/irq_fd.h"
#include "vmm/machine/sections.h"
#include "vmm/machine/sigbus_guard.h"

namespace ember {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kMaxStateFileBytes = 64 << 20;

Result<std::vector<uint8_t>> read_whole_file(const std::string& path, uint64_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(path);
    auto size = file_size(fd.get());
    if (!size) return std::unexpected(std::move(size.error()).wrap(path));
    if (*size > limit)
        return fail(path + ": " + std::to_string(*size) +
                    " bytes is too large for a snapshot state file");
    std::vector<uint8_t> bytes(*size);
    if (auto r = pread_exact(fd.get(), bytes, 0); !r)
        return std::unexpected(std::move(r.error()).wrap(path));
    return bytes;
}

Result<void> write_all(int fd, std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail_errno("write");
        done += static_cast<size_t>(n);
    }
    return {};
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

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

// The parts a new VM and a restored one share: KVM, memory (fresh, or mapped from a snapshot's
// memory file), the in-kernel irqchip and PIT, the event loop, the device plan.
Result<std::unique_ptr<Vmm>> Vmm::build(const VmConfig& config, VmmOptions options, int memory_fd) {
    if (auto r = validate(config); !r) return std::unexpected(r.error());
    auto kvm = Kvm::open(options.kvm_path);
    if (!kvm) return std::unexpected(kvm.error());
    auto vm = kvm->create_vm();
    if (!vm) return std::unexpected(vm.error());
    const uint64_t mem_bytes = uint64_t{config.machine.mem_size_mib} * kMiB;
    auto regions = x86::ram_regions(mem_bytes);
    auto memory = memory_fd >= 0 ? GuestMemory::map_file(regions, memory_fd)
                                 : GuestMemory::create_anonymous(regions);
    if (!memory) return wrap(std::move(memory), "machine-config.mem_size_mib");
    // Memory goes in before the irqchip exists: after it, each KVM_SET_USER_MEMORY_REGION waits for
    // an SRCU grace period, measured at 7-11 ms for 128 MiB here against 0.16 ms before.
    // With track_dirty_pages KVM logs the pages the guest writes, for Diff snapshots.
    const uint32_t flags = config.machine.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    if (flags) memory->enable_dirty_tracking();
    uint32_t slot = 0;
    for (const auto& r : memory->regions()) {
        if (auto res =
                vm->set_user_memory_region(slot++, r.guest_addr, r.size(), r.mapping.data(), flags);
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
    vmm->config_ = config;
    auto cpuid = vmm->kvm_.supported_cpuid();
    if (!cpuid) return std::unexpected(cpuid.error());
    vmm->cpuid_ = std::move(*cpuid);
    auto plan = plan_virtio_slots(config, vmm->options_.boot_timer);
    if (!plan) return std::unexpected(plan.error());
    vmm->virtio_plan_ = std::move(*plan);
    return vmm;
}

Result<std::unique_ptr<Vmm>> Vmm::create(const VmConfig& config, VmmOptions options) {
    if (!config.boot_source) return fail("boot-source: no kernel configured");
    auto vmm = build(config, std::move(options), -1);
    if (!vmm) return vmm;
    if (auto r = (*vmm)->load_guest(config); !r) return std::unexpected(r.error());
    if (auto r = (*vmm)->create_devices(config); !r) return std::unexpected(r.error());
    if (auto r = (*vmm)->create_vcpus(config, nullptr); !r) return std::unexpected(r.error());
    if (auto r = (*vmm)->watch_fds(); !r) return std::unexpected(r.error());
    return vmm;
}

Result<std::unique_ptr<Vmm>> Vmm::restore(const std::string& state_path,
                                          const std::string& memory_path,
                                          const std::vector<NetworkOverride>& network_overrides,
                                          bool track_dirty_pages, VmmOptions options) {
    auto bytes = read_whole_file(state_path, kMaxStateFileBytes);
    if (!bytes) return std::unexpected(std::move(bytes.error()).wrap("snapshot_path"));
    auto file = snapshot::Reader::parse(*bytes, kStateSectionIds);
    if (!file) return std::unexpected(std::move(file.error()).wrap("snapshot_path " + state_path));
    auto section = [&](uint32_t id) { return file->one(id); };
    auto config_section = section(snapshot::kConfig);
    if (!config_section) return std::unexpected(config_section.error());
    auto config = snapshot::decode_config(config_section->payload);
    if (!config) return std::unexpected(config.error());
    for (const auto& o : network_overrides) {
        auto it = std::find_if(config->network_interfaces.begin(), config->network_interfaces.end(),
                               [&](const auto& n) { return n.iface_id == o.iface_id; });
        if (it == config->network_interfaces.end())
            return fail("network_overrides: the snapshot has no network interface '" + o.iface_id +
                        "'");
        it->host_dev_name = o.host_dev_name;
    }
    if (track_dirty_pages) config->machine.track_dirty_pages = true;
    auto layout_section = section(snapshot::kMemory);
    if (!layout_section) return std::unexpected(layout_section.error());
    auto layout = snapshot::decode_memory(layout_section->payload);
    if (!layout) return std::unexpected(layout.error());
    auto vm_section = section(snapshot::kVmKvm);
    if (!vm_section) return std::unexpected(vm_section.error());
    auto vm_state = snapshot::decode_vm(vm_section->payload);
    if (!vm_state) return std::unexpected(vm_state.error());
    std::vector<snapshot::VcpuState> vcpus;
    for (const auto& s : file->all(snapshot::kVcpu)) {
        auto v = snapshot::decode_vcpu(s.payload);
        if (!v) return std::unexpected(v.error());
        vcpus.push_back(std::move(*v));
    }
    if (vcpus.size() != config->machine.vcpu_count)
        return fail("snapshot has " + std::to_string(vcpus.size()) + " vCPU sections for " +
                    std::to_string(config->machine.vcpu_count) + " vCPUs");

    // The memory file must hold every byte the layout says: a shorter one would SIGBUS ember the
    // first time the guest touched a page past its end.
    UniqueFd mem_fd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!mem_fd.valid()) return fail_errno("mem_file_path " + memory_path);
    auto mem_size = file_size(mem_fd.get());
    if (!mem_size)
        return std::unexpected(std::move(mem_size.error()).wrap("mem_file_path " + memory_path));
    const uint64_t expected = uint64_t{config->machine.mem_size_mib} * kMiB;
    if (layout->total() != expected || *mem_size != expected)
        return fail("mem_file_path " + memory_path + ": " + std::to_string(*mem_size) +
                    " bytes, but the snapshot's VM has " + std::to_string(expected) +
                    " bytes of memory");

    auto vmm = build(*config, std::move(options), mem_fd.get());
    if (!vmm) return vmm;
    (*vmm)->memory_file_bytes_ = expected;
    (*vmm)->sigbus_guard_.emplace((*vmm)->memory_);
    if (auto r = snapshot::restore_vm((*vmm)->vm_, *vm_state); !r)
        return std::unexpected(r.error());
    if (auto r = (*vmm)->create_devices(*config); !r) return std::unexpected(r.error());
    if (auto r = snapshot::restore_devices(*file, (*vmm)->persistent_devices(), kDeviceSections);
        !r)
        return std::unexpected(r.error());
    if (auto r = (*vmm)->create_vcpus(*config, &vcpus); !r) return std::unexpected(r.error());
    if (auto r = (*vmm)->watch_fds(); !r) return std::unexpected(r.error());
    (*vmm)->memory_file_ = std::move(mem_fd);
    return vmm;
}

Result<void> Vmm::save_snapshot(const std::string& state_path, const std::string& memory_path,
                                bool diff) {
    if (state_ != VmState::Paused) return fail("a snapshot can only be taken of a paused microVM");
    if (diff && !memory_.tracking_dirty())
        return fail(
            "Diff snapshots need dirty page tracking: machine-config.track_dirty_pages (or "
            "track_dirty_pages when loading a snapshot)");
    if (auto r = refuse_mapped_targets(state_path, memory_path); !r) return r;
    // Requests in flight finish first, so the snapshot holds no I/O half done.
    const auto devices = persistent_devices();
    for (Persistent* d : devices) d->quiesce();
    snapshot::Writer w;
    w.add(snapshot::kConfig, 1, snapshot::encode(config_));
    snapshot::MemoryLayout layout;
    for (const auto& r : memory_.regions()) layout.regions.push_back({r.guest_addr, r.size()});
    w.add(snapshot::kMemory, 1, snapshot::encode(layout));
    auto vm_state = snapshot::capture_vm(vm_);
    if (!vm_state) return std::unexpected(vm_state.error());
    w.add(snapshot::kVmKvm, 1, snapshot::encode(*vm_state));
    auto msrs = kvm_.msr_index_list();
    if (!msrs) return std::unexpected(msrs.error());
    for (size_t i = 0; i < vcpus_.size(); ++i) {
        auto s = snapshot::capture_vcpu(vcpus_[i]->vcpu(), *msrs, vcpu_cpuid_[i]);
        if (!s) return std::unexpected(std::move(s.error()).wrap("vCPU " + std::to_string(i)));
        w.add(snapshot::kVcpu, 1, snapshot::encode(*s));
    }
    snapshot::save_devices(w, devices);

    // Both files are written beside their targets and renamed over them only once both are
    // complete: a failure (or a crash) before that leaves any earlier snapshot at these paths
    // whole, and a process that maps an old memory file keeps its own inode either way.
    auto mem_file = AtomicFile::create(memory_path);
    if (!mem_file) return wrap(std::move(mem_file), "mem_file_path");
    auto dirty = take_dirty_pages();
    if (!dirty) return std::unexpected(dirty.error());
    auto written = write_memory_file(mem_file->fd(), diff ? &*dirty : nullptr);
    auto state_file = written ? AtomicFile::create(state_path) : std::unexpected(written.error());
    auto saved =
        state_file ? write_all(state_file->fd(), w.finish()) : std::unexpected(state_file.error());
    if (saved) saved = mem_file->commit();
    if (saved) saved = state_file->commit();
    if (!saved) {
        // The pages written since the last snapshot still are: the next Diff must carry them.
        keep_dirty_pages(*dirty);
        return std::unexpected(
            std::move(saved.error())
                .wrap(written ? "snapshot_path " + state_path : "mem_file_path " + memory_path));
    }
    return {};
}

Result<void> Vmm::refuse_mapped_targets(const std::string& state_path,
                                        const std::string& memory_path) const {
    struct stat mem{}, state{}, mapped{};
    const bool mem_exists = ::stat(memory_path.c_str(), &mem) == 0;
    const bool state_exists = ::stat(state_path.c_str(), &state) == 0;
    if (state_path == memory_path || (mem_exists && state_exists && same_file(mem, state)))
        return fail("snapshot_path and mem_file_path name the same file: " + memory_path);
    if (!memory_file_.valid() || ::fstat(memory_file_.get(), &mapped) != 0) return {};
    // Writing a new file under that name would be safe (rename), but the caller almost
    // certainly meant another path: taking it over would make this the only copy of the base.
    for (const auto& [exists, st, field, path] :
         {std::tuple{mem_exists, mem, "mem_file_path", memory_path},
          std::tuple{state_exists, state, "snapshot_path", state_path}})
        if (exists && same_file(st, mapped))
            return fail(std::string(field) + " " + path +
                        " is the memory file this microVM was restored from and still maps; "
                        "write the snapshot to another path");
    return {};
}

// KVM's dirty log ORed with the pages ember's devices wrote, per region, clearing both; empty when
// dirty tracking is off.
Result<std::vector<std::vector<uint64_t>>> Vmm::take_dirty_pages() const {
    std::vector<std::vector<uint64_t>> dirty;
    if (!memory_.tracking_dirty()) return dirty;
    for (uint32_t i = 0; i < memory_.regions().size(); ++i) {
        auto log = vm_.get_dirty_log(i, memory_.regions()[i].size() / kPageSize);
        if (!log) return std::unexpected(log.error());
        auto ours = memory_.take_dirty(i);
        for (size_t w = 0; w < log->size() && w < ours.size(); ++w) (*log)[w] |= ours[w];
        dirty.push_back(std::move(*log));
    }
    return dirty;
}

void Vmm::keep_dirty_pages(const std::vector<std::vector<uint64_t>>& dirty) const {
    for (size_t i = 0; i < dirty.size(); ++i)
        for (uint64_t page = 0; page < dirty[i].size() * 64; ++page)
            if (dirty[i][page / 64] & (1ull << (page % 64)))
                memory_.mark_dirty(memory_.regions()[i].guest_addr + page * kPageSize, kPageSize);
}

// Full (dirty == null): every non-zero page (zero pages are holes, so an idle guest's file is
// small and restore reads nothing for them). Diff: only the pages in `dirty`, into a sparse file
// of the same size; snapshot-merge applies it onto its base.
Result<void> Vmm::write_memory_file(int fd, const std::vector<std::vector<uint64_t>>* dirty) const {
    static const uint8_t zero[kPageSize] = {};
    uint64_t offset = 0;
    for (size_t i = 0; i < memory_.regions().size(); ++i) {
        const auto& r = memory_.regions()[i];
        const uint8_t* base = r.mapping.data();
        auto wanted = [&](uint64_t at) {
            const uint64_t page = at / kPageSize;
            return dirty ? ((*dirty)[i][page / 64] >> (page % 64)) & 1
                         : std::memcmp(base + at, zero, kPageSize) != 0;
        };
        // Runs of wanted pages go out in one write each.
        for (uint64_t at = 0; at < r.size(); at += kPageSize) {
            if (!wanted(at)) continue;
            uint64_t run = kPageSize;
            while (at + run < r.size() && wanted(at + run)) run += kPageSize;
            if (::pwrite(fd, base + at, run, static_cast<off_t>(offset + at)) !=
                static_cast<ssize_t>(run))
                return fail_errno("write");
            at += run - kPageSize;
        }
        offset += r.size();
    }
    if (::ftruncate(fd, static_cast<off_t>(offset)) < 0) return fail_errno("ftruncate");
    return {};
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
    auto console = Console::create(options_.serial_out_fd, options_.serial_in_fd);
    if (!console) return std::unexpected(console.error());
    console_ = std::move(*console);

    auto com1_irq = IrqFd::create(vm_, kCom1Gsi);
    if (!com1_irq) return std::unexpected(com1_irq.error());
    serial_ = std::make_unique<Serial>(**com1_irq, console_->output());
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
            config_.drives[slot.index].io_engine = d.block->config().io_engine;
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

uint64_t Vmm::serial_bytes_dropped() const {
    return console_->dropped();
}

std::vector<Persistent*> Vmm::persistent_devices() const {
    std::vector<Persistent*> out{serial_.get(), i8042_.get()};
    for (const auto& d : virtio_) out.push_back(d.transport.get());
    return out;
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

Result<void> Vmm::create_vcpus(const VmConfig& config,
                               const std::vector<snapshot::VcpuState>* restored) {
    const auto msrs = x86::boot_msrs();
    const x86::CpuTopology topology{config.machine.vcpu_count, config.machine.smt};
    install_kick_handler();
    for (uint32_t id = 0; id < config.machine.vcpu_count; ++id) {
        auto vcpu = vm_.create_vcpu(id);
        if (!vcpu) return std::unexpected(vcpu.error());
        const std::string who = "vCPU " + std::to_string(id);
        if (restored) {
            if (auto r = snapshot::restore_vcpu(*vcpu, (*restored)[id]); !r)
                return wrap(std::move(r), who);
            vcpu_cpuid_.push_back((*restored)[id].cpuid);
            vcpus_.push_back(
                std::make_unique<VcpuThread>(std::move(*vcpu), pio_bus_, mmio_bus_, *this));
            continue;
        }
        vcpu_cpuid_.push_back(x86::guest_cpuid(cpuid_, id, topology));
        if (auto r = vcpu->set_cpuid(vcpu_cpuid_.back()); !r) return wrap(std::move(r), who);
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
    return {};
}

void Vmm::pause() {
    if (state_ != VmState::Running) return;
    for (auto& v : vcpus_) v->request_pause();
    for (auto& v : vcpus_) v->wait_paused();
    state_ = VmState::Paused;
    // What the guest printed before the pause is on the console (a file, or a pipe with room)
    // by the time the pause is answered: a client that pauses and reads sees all of it.
    console_->drain();
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

void Vmm::stop_vcpus() {
    for (auto& v : vcpus_) v->stop_and_join();
}

VmExitStatus Vmm::run() {
    if (auto r = loop_->run(); !r) request_exit(ExitReason::Error, r.error().message);
    return finish();
}

VmExitStatus Vmm::finish() {
    stop_vcpus();
    // A memory file that shrank under the VM took the guest's memory with it: whatever the guest
    // did next (on some hosts it faults, on others KVM_RUN fails) is a consequence, not the cause.
    if (memory_file_.valid()) {
        auto size = file_size(memory_file_.get());
        if (size && *size < memory_file_bytes_) {
            std::lock_guard lock(exit_mutex_);
            exit_status_ = VmExitStatus{ExitReason::Error,
                                        "the snapshot's memory file shrank from " +
                                            std::to_string(memory_file_bytes_) + " to " +
                                            std::to_string(*size) +
                                            " bytes while the VM ran; the guest lost its memory"};
        }
    }
    state_ = VmState::Exited;
    console_->flush_at_exit();
    if (uint64_t dropped = console_->dropped())
        log::warn(std::to_string(dropped) +
                  " bytes of guest console output were dropped because the "
                  "console reader was too slow");
    std::lock_guard lock(exit_mutex_);
    return *exit_status_;
}

}  // namespace ember
