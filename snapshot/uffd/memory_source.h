// Where ember-uffd takes a restored VM's guest memory from, by offset in the snapshot's memory file
// (its regions back to back): the file itself, mapped, or a store's chunks fetched on demand
// (snapshot/store/chunked_memory.h). The page server installs what a source hands back whole.
#pragma once

#include <cstdint>
#include <span>

#include "core/base/error.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

// `length` bytes from memory-file offset `offset`; `bytes` null where they are all zeros.
struct MemoryExtent {
    uint64_t offset = 0;
    uint64_t length = 0;
    const uint8_t* bytes = nullptr;
};

class MemorySource {
  public:
    virtual ~MemorySource() = default;
    virtual uint64_t size() const = 0;
    // The extent that holds `offset`: a whole number of `page`s (the region's page size) that
    // includes the one holding it. Its bytes stay valid until the next call.
    virtual Result<MemoryExtent> extent_at(uint64_t offset, uint64_t page) = 0;
    // Brings in ahead of need what `runs` (a working set) cover, where that saves waits.
    virtual Result<void> prefetch(std::span<const PageRun> runs) = 0;
};

// The snapshot's memory file, mapped: a page at a time, no copy.
class MappedMemory final : public MemorySource {
  public:
    explicit MappedMemory(std::span<const uint8_t> memory) : memory_(memory) {}
    uint64_t size() const override { return memory_.size(); }
    Result<MemoryExtent> extent_at(uint64_t offset, uint64_t page) override {
        const uint64_t start = offset / page * page;
        if (start + page > memory_.size()) return fail("a page past the memory file's end");
        return MemoryExtent{start, page, memory_.data() + start};
    }
    Result<void> prefetch(std::span<const PageRun>) override { return {}; }

  private:
    std::span<const uint8_t> memory_;
};

}  // namespace ember::snapshot
