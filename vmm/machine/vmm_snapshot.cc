// The Vmm's snapshots: rebuilding a VM from a state file and a memory file, and writing them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/arch/x86_64/acpi.h"
#include "core/arch/x86_64/cpu_fit.h"
#include "core/arch/x86_64/saved_msrs.h"
#include "core/base/atomic_file.h"
#include "core/base/elapsed.h"
#include "core/base/file_io.h"
#include "core/base/hex.h"
#include "core/base/log.h"
#include "core/base/open_file.h"
#include "core/base/read_within.h"
#include "core/kvm/kvm_abi.h"
#include "core/memory/resident_pages.h"
#include "snapshot/config_section.h"
#include "snapshot/cpu_fit.h"
#include "snapshot/cpu_template_section.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/devices.h"
#include "snapshot/memory_copy.h"
#include "snapshot/working_set.h"
#include "vmm/machine/generation_id.h"
#include "vmm/machine/irq_fd.h"
#include "vmm/machine/sigbus_guard.h"
#include "vmm/machine/vmm.h"

namespace ember {
namespace {

// "12.3 ms": how long a step of a load took, for its log line.
std::string in_ms(std::chrono::microseconds took) {
    const auto us = took.count();
    return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + " ms";
}

std::string took_since(std::chrono::steady_clock::time_point start) {
    return in_ms(elapsed_since(start));
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The snapshot's configuration as the load asks for it: other taps, dirty tracking; and its
// memory's page size, which the layout keeps. Checked again when it changes, since two overrides
// may name one tap.
Result<ValidVmConfig> with_load_options(ValidVmConfig config,
                                        const std::vector<NetworkOverride>& network_overrides,
                                        bool track_dirty_pages, uint64_t page_size) {
    const HugePages pages = page_size == kHugePageSize ? HugePages::Size2M : HugePages::None;
    if (network_overrides.empty() && !track_dirty_pages && pages == HugePages::None) return config;
    VmConfig changed = config;
    changed.machine.huge_pages = pages;
    for (const auto& o : network_overrides) {
        auto it = std::find_if(changed.network_interfaces.begin(), changed.network_interfaces.end(),
                               [&](const auto& n) { return n.iface_id == o.iface_id; });
        if (it == changed.network_interfaces.end())
            return fail("network_overrides: the snapshot has no network interface '" + o.iface_id +
                        "'");
        it->host_dev_name = o.host_dev_name;
    }
    if (track_dirty_pages) changed.machine.track_dirty_pages = true;
    return ValidVmConfig::check(std::move(changed));
}

// Checked before the VM's memory and devices are built: a guest given a CPU feature, an XSAVE
// component or an MSR that this host's KVM does not offer is refused here, with what is missing
// named, rather than by KVM halfway through the load (an MSR) or by the guest's first use of an
// instruction that is gone (SIGILL, long after the load said yes). Another vendor is said, not
// refused: KVM runs it. MSRs at 0 that this KVM has no state for are left out (cpu_fit.h).
Result<void> fit_to_host(snapshot::DecodedSnapshot& snap, const PreparedVm& host) {
    auto host_msrs = host.kvm.msr_index_list();
    EMBER_TRY(host_msrs);
    const auto all = snapshot::cpu_shortfall(snap.vcpus, host.supported_cpuid, *host_msrs);
    if (!all.empty()) return fail(x86::describe(all));
    const std::string pending =
        snapshot::pending_exception_misfit(snap.vcpus, host.kvm.exception_payload());
    if (!pending.empty()) return fail(pending);
    for (VcpuState& v : snap.vcpus)
        std::erase_if(v.msrs, [&](const auto& m) { return x86::not_restored(m, *host_msrs); });
    if (!snap.vcpus.empty()) {
        const std::string was = x86::cpu_vendor(snap.vcpus.front().cpuid);
        const std::string here = x86::cpu_vendor(host.supported_cpuid);
        if (was != here)
            log::warn("restore: the snapshot's guest was given a " + was +
                      " CPU and this host is " + here +
                      "; every feature it was given is here, but its kernel chose paths "
                      "for the other vendor");
    }
    return {};
}

std::string memory_file_failure(const std::string& path) {
    return "the memory file " + path +
           " could not serve the page: its file system is full, failing or stalled, or the file "
           "was cut short";
}

}  // namespace

Result<std::unique_ptr<Vmm>> Vmm::restore(const LoadSnapshot& load, VmmOptions options,
                                          std::optional<PreparedVm> prepared) {
    const std::string& state_path = load.snapshot_path;
    const std::string& memory_path = load.memory().backend_path;
    // A create killed between its renames left the memory file of a newer pair beside the state
    // file of the older: put back, the older pair loads whole (atomic_file.h).
    if (!load.uffd()) AtomicFile::recover_pair(memory_path, state_path);
    auto snap = snapshot::read_snapshot(state_path);
    EMBER_TRY(snap, "snapshot_path " + state_path);
    auto config = with_load_options(std::move(snap->config), load.network_overrides,
                                    load.track_dirty_pages, snap->layout.page_size);
    EMBER_TRY(config);
    snap->config = std::move(*config);
    if (!prepared) {
        auto made = prepare_vm(options.kvm_path);
        EMBER_TRY(made);
        prepared = std::move(*made);
    }
    EMBER_TRY(fit_to_host(*snap, *prepared), "snapshot_path " + state_path);
    // Checked before anything is built: a working set that does not fit stops the load.
    std::optional<snapshot::WorkingSet> working_set;
    if (load.working_set_path) {
        const std::string field = "working_set_path " + *load.working_set_path;
        auto ws = open_file(*load.working_set_path, O_RDONLY);
        EMBER_TRY(ws, field);
        auto set = snapshot::read_working_set(ws->get(), snap->identity);
        EMBER_TRY(set, field);
        working_set = std::move(*set);
    }
    if (load.uffd())
        return restore_through_handler(load, std::move(options), std::move(prepared), *snap,
                                       working_set);
    // The memory file must hold every byte the layout says: a shorter one would SIGBUS ember the
    // first time the guest touched a page past its end.
    const uint64_t expected = snap->identity.memory_bytes;
    auto opened = open_file(memory_path, O_RDONLY);
    EMBER_TRY(opened, "mem_file_path " + memory_path);
    UniqueFd mem_fd = std::move(*opened);
    auto mem_size = file_size(mem_fd.get());
    EMBER_TRY(mem_size, "mem_file_path " + memory_path);
    if (*mem_size != expected)
        return fail("mem_file_path " + memory_path + ": " + std::to_string(*mem_size) +
                    " bytes, but the snapshot's VM has " + std::to_string(expected) +
                    " bytes of memory");

    if (snap->layout.page_size != kGuestPageSize) {
        if (working_set)
            return fail("working_set_path " + *load.working_set_path +
                        ": the snapshot's VM is on huge pages, which a load from the memory "
                        "file reads whole; a working set has nothing to add");
        return restore_huge_pages(mem_fd.get(), std::move(options), std::move(prepared), *snap);
    }
    auto vmm = build(snap->config, std::move(options), mem_fd.get(), std::move(prepared));
    EMBER_TRY(vmm);
    // Before any vCPU runs.
    if (working_set) {
        const auto start = std::chrono::steady_clock::now();
        auto times = snapshot::prefetch_working_set(*working_set, (*vmm)->memory_);
        EMBER_TRY(times, "working_set_path " + *load.working_set_path);
        const auto c = working_set->counts();
        log::info("restore: working set " + *load.working_set_path + ": " +
                  std::to_string(c.written_pages) + " written pages copied in " +
                  in_ms(times->copy_written) + ", " + std::to_string(c.read_pages) +
                  " read pages mapped in " + in_ms(times->map_read) + ", in " +
                  std::to_string(c.runs) + " runs, in " + took_since(start));
    }
    (*vmm)->restored_from_ = snap->identity;
    (*vmm)->memory_file_bytes_ = expected;
    (*vmm)->memory_failure_ = memory_file_failure(memory_path);
    (*vmm)->sigbus_guard_.emplace((*vmm)->memory_, (*vmm)->memory_failure_);
    (*vmm)->memory_file_ = std::move(mem_fd);
    EMBER_TRY((*vmm)->restore_state(*snap));
    if (auto r = (*vmm)->page_in_what_ember_touches(); !r) {
        // Not closed where its file system stopped answering: on FUSE, close() sends a FLUSH
        // that waits for the server, uninterruptibly. The process's exit closes it.
        if (r.error().kind == ErrorKind::Unavailable) (void)(*vmm)->memory_file_.release();
        return std::unexpected(std::move(r.error()).wrap("mem_file_path " + memory_path));
    }
    EMBER_TRY((*vmm)->renew_generation_id());
    if (working_set) (*vmm)->pre_fault(*working_set);
    return vmm;
}

// Guest memory the VMM thread writes or reads itself as the VM starts, read from the memory file
// into the page cache first, within a bound: the new generation ID's page, and the rings of the
// live virtio queues, which the first kicks of the restored devices read. A file system that does
// not answer then fails the load, where touching those pages would block the VMM thread, and
// with it the API, for as long as the file system stalls.
Result<void> Vmm::page_in_what_ember_touches() const {
    std::vector<FileRange> ranges;
    auto add = [&](uint64_t gpa, uint64_t size) {
        uint64_t offset = 0;
        for (const auto& r : memory_.regions()) {
            if (gpa >= r.guest_addr && gpa < r.end()) {
                const uint64_t at = gpa - r.guest_addr;
                ranges.push_back({offset + at, std::min(size, r.size() - at)});
                return;
            }
            offset += r.size();
        }
    };
    if (generation_id_) add(generation_id_->addr, x86::kVmGenIdBytes);
    for (const auto& d : virtio_)
        for (const auto& q : d.device->queue_states()) {
            if (!q.ready) continue;
            add(q.desc_table, uint64_t{16} * q.size);
            add(q.avail_ring, 6 + uint64_t{2} * q.size);
            add(q.used_ring, 6 + uint64_t{8} * q.size);
        }
    return read_within(memory_file_.get(), std::move(ranges), kMemoryFileBound);
}

// hugetlb memory cannot map the memory file: its pages are reserved and the file read into them
// before any vCPU runs. Nothing maps the file afterwards.
Result<std::unique_ptr<Vmm>> Vmm::restore_huge_pages(int mem_fd, VmmOptions options,
                                                     std::optional<PreparedVm> prepared,
                                                     const snapshot::DecodedSnapshot& snap) {
    auto vmm = build(snap.config, std::move(options), -1, std::move(prepared));
    EMBER_TRY(vmm);
    auto copied = snapshot::copy_memory_file(mem_fd, (*vmm)->memory_);
    EMBER_TRY(copied);
    log::info("restore: " + std::to_string(*copied >> 20) + " MiB of the memory file read into " +
              std::to_string(snap.layout.page_size >> 20) + " MiB pages");
    EMBER_TRY((*vmm)->restore_state(snap));
    EMBER_TRY((*vmm)->renew_generation_id());
    return vmm;
}

// Guest memory is anonymous, and every page of it comes from the handler: registered and handed
// over before anything, ember included, touches it.
Result<std::unique_ptr<Vmm>> Vmm::restore_through_handler(
    const LoadSnapshot& load, VmmOptions options, std::optional<PreparedVm> prepared,
    const snapshot::DecodedSnapshot& snap, const std::optional<snapshot::WorkingSet>& working_set) {
    auto vmm = build(snap.config, std::move(options), -1, std::move(prepared));
    EMBER_TRY(vmm);
    auto backing = UffdBacking::connect((*vmm)->memory_, load.memory().backend_path,
                                        (*vmm)->options_.vmm_filter);
    EMBER_TRY(backing);
    (*vmm)->memory_failure_ =
        "the page-fault handler at " + load.memory().backend_path + " did not serve the page";
    (*vmm)->uffd_ = std::move(*backing);
    EMBER_TRY((*vmm)->restore_state(snap));
    EMBER_TRY((*vmm)->renew_generation_id());
    // The handler brings the pages in (ember-uffd installs a working set first, from every core);
    // KVM maps them for the guest here, where each would otherwise cost the guest an exit.
    if (working_set) (*vmm)->pre_fault(*working_set);
    return vmm;
}

Result<void> Vmm::restore_state(const snapshot::DecodedSnapshot& snap) {
    EMBER_TRY(snapshot::restore_vm(vm_, snap.vm));
    EMBER_TRY(create_devices(snap.config));
    EMBER_TRY(snapshot::restore_devices(snap.file, persistent_devices(),
                                        state_sections::kPerDeviceKinds));
    EMBER_TRY(create_vcpus(snap.config, &snap.vcpus));
    EMBER_TRY(watch_fds());
    generation_id_ = snap.layout.generation_id;
    return {};
}

// With the vCPUs' state in place, so that KVM maps for the mode the guest runs in. Only a speed-up:
// where KVM cannot, the pages are mapped on the guest's first touch of each, as before.
void Vmm::pre_fault(const snapshot::WorkingSet& set) {
    if (!options_.pre_fault || vcpus_.empty() ||
        kvm_.check_extension(kvm_abi::kCapPreFaultMemory) <= 0)
        return;
    auto ranges = snapshot::guest_ranges(set, memory_);
    if (!ranges) {
        log::warn("restore: " + ranges.error().message);
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    const Vcpu& vcpu = vcpus_.front()->vcpu();
    uint64_t bytes = 0, failed = 0;
    std::string first_failure;
    for (const auto& range : *ranges) {
        auto mapped = vcpu.pre_fault_memory(range.addr, range.size);
        if (mapped) {
            bytes += range.size;
            continue;
        }
        if (mapped.error().kind == ErrorKind::Unavailable) {
            log::warn("restore: the working set is mapped for the guest on its first touches: " +
                      mapped.error().message);
            return;
        }
        // One range KVM could not map says nothing of the others.
        if (failed++ == 0) first_failure = mapped.error().message;
    }
    log::info("restore: the working set's " + std::to_string(bytes / kGuestPageSize) +
              " pages mapped for the guest before it runs (KVM_PRE_FAULT_MEMORY), in " +
              std::to_string(ranges->size() - failed) + " ranges, in " + took_since(start));
    if (failed > 0)
        log::warn(
            "restore: " + std::to_string(failed) +
            " ranges of the working set are left to the guest's first touches: " + first_failure);
}

// After the vCPUs' LAPICs are restored, or the interrupt would be overwritten with them.
Result<void> Vmm::renew_generation_id() {
    if (!generation_id_) return {};
    EMBER_TRY(write_new_generation_id(memory_, generation_id_->addr));
    auto irq = IrqFd::create(vm_, generation_id_->gsi);
    EMBER_TRY(irq);
    (*irq)->trigger();
    irqs_.push_back(std::move(*irq));
    log::info("restore: a new VM generation ID, announced on GSI " +
              std::to_string(generation_id_->gsi));
    return {};
}

Result<snapshot::WorkingSetCounts> Vmm::record_working_set(const std::string& path) const {
    // Every page of such a VM is private, so residency cannot tell read pages from written ones.
    if (uffd_)
        return fail(
            "the microVM was restored through the Uffd backend: record a working set from "
            "a clone restored from the memory file (mem_backend File)");
    if (memory_.page_size() != kGuestPageSize)
        return fail(
            "the microVM's memory is on huge pages, read whole at its load: no page of it comes "
            "lazily, so there is no working set to record");
    if (!memory_file_.valid())
        return fail(
            "the microVM was not restored from a snapshot: a working set is what a restored VM "
            "touched after its load");
    struct stat target{}, mapped{};
    if (::stat(path.c_str(), &target) == 0 && ::fstat(memory_file_.get(), &mapped) == 0 &&
        same_file(target, mapped))
        return fail("working_set_path " + path +
                    " is the memory file this microVM was restored from and still maps");
    std::vector<std::vector<Residency>> residency;
    for (const auto& r : memory_.regions()) {
        auto pages = resident_pages(r.mapping.data(), r.size());
        EMBER_TRY(pages);
        residency.push_back(std::move(*pages));
    }
    const auto runs = snapshot::touched_runs(residency, memory_);
    auto file = AtomicFile::create(path);
    EMBER_TRY(file, "working_set_path " + path);
    EMBER_TRY(snapshot::write_working_set(file->fd(), restored_from_, runs),
              "working_set_path " + path);
    EMBER_TRY(file->commit(), "working_set_path " + path);
    return snapshot::count_runs(runs);
}

Result<void> Vmm::save_snapshot(const std::string& state_path, const std::string& memory_path,
                                bool diff) {
    if (state_ != VmState::Paused) return fail("a snapshot can only be taken of a paused microVM");
    if (diff && !memory_.tracking_dirty())
        return fail(
            "Diff snapshots need dirty page tracking: machine-config.track_dirty_pages (or "
            "track_dirty_pages when loading a snapshot)");
    EMBER_TRY(refuse_mapped_targets(state_path, memory_path));
    // Requests in flight finish first, so the snapshot holds no I/O half done.
    const auto devices = persistent_devices();
    for (const auto& d : devices) EMBER_TRY(d.device->quiesce());
    snapshot::Writer w;
    w.add(state_sections::kConfig, snapshot::encode(config()));
    if (const auto& t = config().cpu_config)
        w.add(state_sections::kCpuTemplate.id | snapshot::kOptional,
              state_sections::kCpuTemplate.version, snapshot::encode(*t));
    snapshot::MemoryLayout layout;
    for (const auto& r : memory_.regions()) layout.regions.push_back({r.guest_addr, r.size()});
    layout.page_size = memory_.page_size();
    layout.generation_id = generation_id_;
    w.add(state_sections::kMemory, snapshot::encode(layout));
    auto vm_state = snapshot::capture_vm(vm_);
    EMBER_TRY(vm_state);
    w.add(state_sections::kVmKvm, snapshot::encode(*vm_state));
    auto msrs = kvm_.msr_index_list();
    EMBER_TRY(msrs);
    if (!named_unclassified_msrs_) {
        named_unclassified_msrs_ = true;
        if (auto unknown = x86::unclassified_msrs(*msrs); !unknown.empty()) {
            std::string list;
            for (uint32_t m : unknown) list += (list.empty() ? "" : ", ") + hex(m);
            log::warn("snapshot: this host's KVM lists MSRs ember does not know, not saved: " +
                      list);
        }
    }
    std::vector<uint32_t> template_msrs;
    if (const auto& t = config().cpu_config)
        for (const auto& m : t->msr_modifiers) template_msrs.push_back(m.addr);
    for (size_t i = 0; i < vcpus_.size(); ++i) {
        const auto to_save = x86::msrs_to_save(*msrs, vcpu_cpuid_[i], template_msrs);
        auto s = capture_vcpu(vcpus_[i]->vcpu(), to_save, vcpu_cpuid_[i], kvm_.nested_state_size());
        EMBER_TRY(s, "vCPU " + std::to_string(i));
        w.add(state_sections::kVcpu.id, snapshot::vcpu_section_version(*s), snapshot::encode(*s));
    }
    snapshot::save_devices(w, devices);

    // Both files are written beside their targets and renamed over them as a pair only once both
    // are complete: a failure leaves any earlier snapshot at these paths whole, and a process that
    // maps an old memory file keeps its own inode either way. What a create killed at these paths
    // left goes first (atomic_file.h).
    AtomicFile::recover_pair(memory_path, state_path);
    auto mem_file = AtomicFile::create(memory_path);
    EMBER_TRY(mem_file, "mem_file_path");
    auto dirty = take_dirty_pages();
    EMBER_TRY(dirty);
    auto written = write_memory_file(mem_file->fd(), diff ? &*dirty : nullptr);
    auto state_file = written ? AtomicFile::create(state_path) : std::unexpected(written.error());
    auto saved =
        state_file ? write_all(state_file->fd(), w.finish()) : std::unexpected(state_file.error());
    if (!saved) {
        // The pages written since the last snapshot still are: the next Diff must carry them.
        keep_dirty_pages(*dirty);
        return std::unexpected(
            std::move(saved.error())
                .wrap(written ? "snapshot_path " + state_path : "mem_file_path " + memory_path));
    }
    // Its errors name the file that failed.
    if (auto r = AtomicFile::commit_pair(*mem_file, *state_file); !r) {
        keep_dirty_pages(*dirty);
        return r;
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
        auto log = vm_.get_dirty_log(i, memory_.regions()[i].size() / kGuestPageSize);
        EMBER_TRY(log);
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
                memory_.mark_dirty(memory_.regions()[i].guest_addr + page * kGuestPageSize,
                                   kGuestPageSize);
}

// Full (dirty == null): every non-zero page (zero pages are holes, so an idle guest's file is
// small and restore reads nothing for them). Diff: only the pages in `dirty`, into a sparse file
// of the same size; snapshot-merge applies it onto its base.
Result<void> Vmm::write_memory_file(int fd, const std::vector<std::vector<uint64_t>>* dirty) const {
    static const uint8_t zero[kGuestPageSize] = {};
    uint64_t offset = 0;
    for (size_t i = 0; i < memory_.regions().size(); ++i) {
        const auto& r = memory_.regions()[i];
        const uint8_t* base = r.mapping.data();
        auto wanted = [&](uint64_t at) {
            const uint64_t page = at / kGuestPageSize;
            return dirty ? ((*dirty)[i][page / 64] >> (page % 64)) & 1
                         : std::memcmp(base + at, zero, kGuestPageSize) != 0;
        };
        // Runs of wanted pages go out in one write each.
        for (uint64_t at = 0; at < r.size(); at += kGuestPageSize) {
            if (!wanted(at)) continue;
            uint64_t run = kGuestPageSize;
            while (at + run < r.size() && wanted(at + run)) run += kGuestPageSize;
            EMBER_TRY(pwrite_all(fd, {base + at, run}, offset + at));
            at += run - kGuestPageSize;
        }
        offset += r.size();
    }
    if (::ftruncate(fd, static_cast<off_t>(offset)) < 0) return fail_errno("ftruncate");
    return {};
}

}  // namespace ember
