#include "snapshot/write_snapshot.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <tuple>

#include "core/base/atomic_file.h"
#include "core/base/file_io.h"
#include "snapshot/config_section.h"
#include "snapshot/cpu_template_section.h"

namespace ember::snapshot {
namespace {

using DirtyPages = std::vector<std::vector<uint64_t>>;

std::vector<uint8_t> state_file(const MachineState& m) {
    Writer w;
    w.add(state_sections::kConfig, encode(m.config));
    if (const auto& t = m.config.cpu_config)
        w.add(state_sections::kCpuTemplate.id | kOptional, state_sections::kCpuTemplate.version,
              encode(*t));
    w.add(state_sections::kMemory, encode(m.layout));
    w.add(state_sections::kVmKvm, encode(m.vm));
    for (const auto& v : m.vcpus) w.add(kVcpu, vcpu_section_version(v), encode(v));
    save_devices(w, m.devices);
    return w.finish();
}

// KVM's dirty log ORed with the pages ember's devices wrote, per region, clearing both; empty when
// dirty tracking is off.
Result<DirtyPages> take_dirty_pages(const Vm& vm, const GuestMemory& memory) {
    DirtyPages dirty;
    if (!memory.tracking_dirty()) return dirty;
    for (uint32_t i = 0; i < memory.regions().size(); ++i) {
        auto log = vm.get_dirty_log(i, memory.regions()[i].size() / kGuestPageSize);
        EMBER_TRY(log);
        auto ours = memory.take_dirty(i);
        for (size_t w = 0; w < log->size() && w < ours.size(); ++w) (*log)[w] |= ours[w];
        dirty.push_back(std::move(*log));
    }
    return dirty;
}

void keep_dirty_pages(const GuestMemory& memory, const DirtyPages& dirty) {
    for (size_t i = 0; i < dirty.size(); ++i)
        for (uint64_t page = 0; page < dirty[i].size() * 64; ++page)
            if (dirty[i][page / 64] & (1ull << (page % 64)))
                memory.mark_dirty(memory.regions()[i].guest_addr + page * kGuestPageSize,
                                  kGuestPageSize);
}

// Full (dirty == null): every non-zero page (zero pages are holes, so an idle guest's file is
// small and restore reads nothing for them). Diff: only the pages in `dirty`, into a sparse file
// of the same size; snapshot-merge applies it onto its base.
Result<void> write_memory_file(int fd, const GuestMemory& memory, const DirtyPages* dirty) {
    static const uint8_t zero[kGuestPageSize] = {};
    uint64_t offset = 0;
    for (size_t i = 0; i < memory.regions().size(); ++i) {
        const auto& r = memory.regions()[i];
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

}  // namespace

Result<void> refuse_targets(const SnapshotTargets& to, const RestoredMemory* restored) {
    struct stat mem{}, state{};
    const bool mem_exists = ::stat(to.memory_path.c_str(), &mem) == 0;
    const bool state_exists = ::stat(to.state_path.c_str(), &state) == 0;
    if (to.state_path == to.memory_path || (mem_exists && state_exists && same_file(mem, state)))
        return fail("snapshot_path and mem_file_path name the same file: " + to.memory_path);
    if (restored == nullptr) return {};
    for (const auto& [exists, st, field, path] :
         {std::tuple{mem_exists, mem, "mem_file_path", to.memory_path},
          std::tuple{state_exists, state, "snapshot_path", to.state_path}})
        if (exists && restored->maps(st))
            return fail(std::string(field) + " " + path +
                        " is the memory file this microVM was restored from and still maps; "
                        "write the snapshot to another path");
    return {};
}

Result<void> write_snapshot(const MachineState& machine, const Vm& vm, const GuestMemory& memory,
                            bool diff, const SnapshotTargets& to) {
    // What a create killed at these paths left goes first (atomic_file.h).
    AtomicFile::recover_pair(to.memory_path, to.state_path);
    auto mem_file = AtomicFile::create(to.memory_path);
    EMBER_TRY(mem_file, "mem_file_path");
    auto dirty = take_dirty_pages(vm, memory);
    EMBER_TRY(dirty);
    auto written = write_memory_file(mem_file->fd(), memory, diff ? &*dirty : nullptr);
    auto state = written ? AtomicFile::create(to.state_path) : std::unexpected(written.error());
    auto saved =
        state ? write_all(state->fd(), state_file(machine)) : std::unexpected(state.error());
    if (!saved) {
        keep_dirty_pages(memory, *dirty);
        return std::unexpected(std::move(saved.error())
                                   .wrap(written ? "snapshot_path " + to.state_path
                                                 : "mem_file_path " + to.memory_path));
    }
    // Its errors name the file that failed.
    if (auto r = AtomicFile::commit_pair(*mem_file, *state); !r) {
        keep_dirty_pages(memory, *dirty);
        return r;
    }
    return {};
}

}  // namespace ember::snapshot
