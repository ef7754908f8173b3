#include "snapshot/restore/restored_memory.h"

#include <sys/stat.h>

#include "core/base/atomic_file.h"
#include "core/base/elapsed.h"
#include "core/base/file_io.h"
#include "core/base/log.h"
#include "core/base/read_within.h"
#include "core/kvm/kvm_abi.h"
#include "core/memory/resident_pages.h"
#include "snapshot/memory_copy.h"
#include "snapshot/restore/sigbus_guard.h"
#include "snapshot/restore/uffd_backing.h"

namespace ember::snapshot {
namespace {

// "12.3 ms": how long a step of a load took, for its log line.
std::string in_ms(std::chrono::microseconds took) {
    const auto us = took.count();
    return std::to_string(us / 1000) + "." + std::to_string(us % 1000 / 100) + " ms";
}

std::string took_since(std::chrono::steady_clock::time_point start) {
    return in_ms(elapsed_since(start));
}

// Before any vCPU runs.
Result<void> prefetch(const WorkingSet& set, const std::string& path, const GuestMemory& memory) {
    const auto start = std::chrono::steady_clock::now();
    auto times = prefetch_working_set(set, memory);
    EMBER_TRY(times, "working_set_path " + path);
    const auto c = set.counts();
    log::info("restore: working set " + path + ": " + std::to_string(c.written_pages) +
              " written pages copied in " + in_ms(times->copy_written) + ", " +
              std::to_string(c.read_pages) + " read pages mapped in " + in_ms(times->map_read) +
              ", in " + std::to_string(c.runs) + " runs, in " + took_since(start));
    return {};
}

}  // namespace

RestoredMemory::RestoredMemory(Key, const RestorePlan& plan)
    : from_(plan.snap.identity), page_size_(plan.snap.layout.page_size) {}

RestoredMemory::~RestoredMemory() = default;

Result<std::unique_ptr<RestoredMemory>> RestoredMemory::fill(RestorePlan& plan,
                                                             const GuestMemory& memory,
                                                             const seccomp::BpfProgram* filter) {
    auto r = std::make_unique<RestoredMemory>(Key{}, plan);
    if (auto* file = std::get_if<MappedFile>(&plan.memory)) {
        if (plan.working_set) EMBER_TRY(prefetch(*plan.working_set, plan.working_set_path, memory));
        r->failure_ = "the memory file " + file->path +
                      " could not serve the page: its file system is full, failing or stalled, "
                      "or the file was cut short";
        r->sigbus_guard_ = std::make_unique<SigbusGuard>(memory, r->failure_);
        r->file_ = std::move(file->fd);
        r->path_ = file->path;
    } else if (auto* copy = std::get_if<HugePageCopy>(&plan.memory)) {
        auto copied = copy_memory_file(copy->fd.get(), memory);
        EMBER_TRY(copied);
        log::info("restore: " + std::to_string(*copied >> 20) +
                  " MiB of the memory file read into " + std::to_string(r->page_size_ >> 20) +
                  " MiB pages");
    } else {
        // Registered and handed over before anything, ember included, touches the memory.
        const auto& handler = std::get<PageFaultHandler>(plan.memory);
        auto backing = UffdBacking::connect(memory, handler.socket_path, filter);
        EMBER_TRY(backing);
        r->failure_ =
            "the page-fault handler at " + handler.socket_path + " did not serve the page";
        r->uffd_ = std::move(*backing);
    }
    r->working_set_ = std::move(plan.working_set);
    return r;
}

Result<void> RestoredMemory::page_in(std::span<const GuestRange> ranges,
                                     const GuestMemory& memory) {
    if (!file_.valid()) return {};
    std::vector<FileRange> in_file;
    for (const auto& range : ranges) {
        uint64_t offset = 0;
        for (const auto& r : memory.regions()) {
            if (range.addr >= r.guest_addr && range.addr < r.end()) {
                const uint64_t at = range.addr - r.guest_addr;
                in_file.push_back({offset + at, std::min(range.size, r.size() - at)});
                break;
            }
            offset += r.size();
        }
    }
    if (auto r = read_within(file_.get(), std::move(in_file), kMemoryFileBound); !r) {
        // Not closed where its file system stopped answering: on FUSE, close() sends a FLUSH
        // that waits for the server, uninterruptibly. The process's exit closes it.
        if (r.error().kind == ErrorKind::Unavailable) (void)file_.release();
        return std::unexpected(std::move(r.error()).wrap("mem_file_path " + path_));
    }
    return {};
}

void RestoredMemory::pre_fault(const Kvm& kvm, const Vcpu& vcpu, const GuestMemory& memory) const {
    if (!working_set_ || kvm.check_extension(kvm_abi::kCapPreFaultMemory) <= 0) return;
    auto ranges = guest_ranges(*working_set_, memory);
    if (!ranges) {
        log::warn("restore: " + ranges.error().message);
        return;
    }
    const auto start = std::chrono::steady_clock::now();
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

// A memory file that shrank under the VM took the guest's memory with it: whatever the guest did
// next (on some hosts it faults, on others KVM_RUN fails) is a consequence, not the cause.
std::optional<std::string> RestoredMemory::lost_memory() const {
    if (!file_.valid()) return {};
    auto size = file_size(file_.get());
    if (!size || *size >= from_.memory_bytes) return {};
    return "the snapshot's memory file shrank from " + std::to_string(from_.memory_bytes) + " to " +
           std::to_string(*size) + " bytes while the VM ran; the guest lost its memory";
}

bool RestoredMemory::maps(const struct stat& file) const {
    struct stat mapped{};
    return file_.valid() && ::fstat(file_.get(), &mapped) == 0 && same_file(file, mapped);
}

Result<WorkingSetCounts> RestoredMemory::record_working_set(const std::string& path,
                                                            const GuestMemory& memory) const {
    // Every page of such a VM is private, so residency cannot tell read pages from written ones.
    if (uffd_)
        return fail(
            "the microVM was restored through the Uffd backend: record a working set from "
            "a clone restored from the memory file (mem_backend File)");
    if (page_size_ != kGuestPageSize)
        return fail(
            "the microVM's memory is on huge pages, read whole at its load: no page of it comes "
            "lazily, so there is no working set to record");
    struct stat target{};
    if (::stat(path.c_str(), &target) == 0 && maps(target))
        return fail("working_set_path " + path +
                    " is the memory file this microVM was restored from and still maps");
    std::vector<std::vector<Residency>> residency;
    for (const auto& r : memory.regions()) {
        auto pages = resident_pages(r.mapping.data(), r.size());
        EMBER_TRY(pages);
        residency.push_back(std::move(*pages));
    }
    const auto runs = touched_runs(residency, memory);
    auto file = AtomicFile::create(path);
    EMBER_TRY(file, "working_set_path " + path);
    EMBER_TRY(write_working_set(file->fd(), from_, runs), "working_set_path " + path);
    EMBER_TRY(file->commit(), "working_set_path " + path);
    return count_runs(runs);
}

}  // namespace ember::snapshot
