// Working-set files as a host agent might hand them back, tampered with: the header and index
// are checked against the snapshot being loaded, and what is accepted is then prefetched into a
// small guest memory, where every page it lists must end up mapped and nothing outside the guest's
// mapping may be touched.
//
// The index's checksum would stop nearly every mutation at the door, so the first byte chooses:
// bit 0 clear, the target writes the right checksum after the index the header counts; bit 1
// set, the snapshot being loaded is the one the header names (otherwise a fixed one).
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "core/base/file_io.h"
#include "core/base/log.h"
#include "core/base/unique_fd.h"
#include "fuzz/support/require.h"
#include "snapshot/format.h"
#include "snapshot/working_set.h"

using namespace ember;
using fuzz::require;

namespace {

constexpr size_t kHeaderBytes = 56;
constexpr size_t kRunBytes = 24;
constexpr uint64_t kMostMemory = 1 << 20;

uint64_t load64(const std::vector<uint8_t>& b, size_t at) {
    uint64_t v = 0;
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool quiet = [] {
        log::set_level(log::Level::Off);
        return true;
    }();
    (void)quiet;
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    std::vector<uint8_t> file(data + 1, data + size);
    if (!(mode & 1) && file.size() >= kHeaderBytes) {
        const uint64_t count = load64(file, 32);
        if (count < file.size() / kRunBytes) {
            const size_t end = kHeaderBytes + count * kRunBytes;
            if (end + 8 <= file.size()) {
                const uint64_t sum = snapshot::fnv1a64(std::span(file).first(end));
                std::memcpy(file.data() + end, &sum, sizeof sum);
            }
        }
    }
    snapshot::SnapshotIdentity snapshot{0x1234, 64 * 1024};
    if ((mode & 2) && file.size() >= kHeaderBytes) snapshot = {load64(file, 16), load64(file, 24)};

    UniqueFd fd(::memfd_create("working-set", MFD_CLOEXEC));
    require(fd.valid(), "memfd");
    require(static_cast<bool>(write_all(fd.get(), file)), "write the input");
    auto set = snapshot::read_working_set(fd.get(), snapshot);
    if (!set) {
        require(!set.error().message.empty(), "a refusal says why");
        return 0;
    }
    uint64_t end = 0;
    for (const auto& r : set->runs) {
        require(r.pages > 0 && r.offset % 4096 == 0 && r.offset >= end, "runs in order");
        end = r.offset + r.pages * 4096;
        require(end <= snapshot.memory_bytes, "runs inside the snapshot's memory");
    }
    if (snapshot.memory_bytes == 0 || snapshot.memory_bytes > kMostMemory ||
        snapshot.memory_bytes % 4096 != 0)
        return 0;

    UniqueFd memory_file(::memfd_create("memory", MFD_CLOEXEC));
    require(::ftruncate(memory_file.get(), static_cast<off_t>(snapshot.memory_bytes)) == 0,
            "size the memory file");
    const MemoryRegionSpec spec[] = {{0, snapshot.memory_bytes}};
    auto memory = GuestMemory::map_file(spec, memory_file.get());
    require(static_cast<bool>(memory), "map the memory file");
    require(static_cast<bool>(snapshot::prefetch_working_set(*set, *memory)),
            "an accepted working set is prefetched");
    const auto& region = memory->regions()[0];
    auto resident = resident_pages(region.mapping.data(), region.size());
    require(static_cast<bool>(resident), "pagemap");
    for (const auto& r : set->runs)
        for (uint64_t p = 0; p < r.pages; ++p)
            require((*resident)[r.offset / 4096 + p] != Residency::Absent,
                    "every listed page is mapped");
    return 0;
}
