#include "snapshot/uffd/memory_source.h"

#include <algorithm>
#include <vector>

#include "core/base/at_once.h"
#include "core/memory/guest_memory.h"

namespace ember::snapshot {

namespace {

// A piece a thread copies at a time: large enough that one ioctl does much, small enough that
// the threads share the work evenly.
constexpr uint64_t kPieceBytes = uint64_t{1} << 20;

}  // namespace

Result<MemoryExtent> MappedMemory::extent_at(uint64_t offset, uint64_t page) {
    const uint64_t start = offset / page * page;
    if (start + page > memory_.size()) return fail("a page past the memory file's end");
    return MemoryExtent{start, page, memory_.data() + start};
}

Result<void> MappedMemory::deliver(std::span<const PageRun> runs, const TakeExtent& take) {
    std::vector<MemoryExtent> pieces;
    for (const auto& run : runs) {
        const uint64_t bytes = run.pages * kGuestPageSize;
        if (run.offset > memory_.size() || bytes > memory_.size() - run.offset)
            return fail("a working-set run past the memory file's end");
        for (uint64_t at = 0; at < bytes; at += kPieceBytes) {
            const uint64_t length = std::min(kPieceBytes, bytes - at);
            pieces.push_back({run.offset + at, length, memory_.data() + run.offset + at});
        }
    }
    return for_each_at_once(pieces.size(), busy_threads(),
                            [&](size_t i) -> Result<void> { return take(pieces[i]); });
}

}  // namespace ember::snapshot
