// Where ember-uffd takes a restored VM's guest memory from, by offset in the snapshot's memory file
// (its regions back to back): the file itself, mapped, or a store's chunks fetched on demand
// (snapshot/store/chunked_memory.h). The page server installs what a source hands back whole.
#pragma once

#include <cstdint>
#include <functional>
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

// Called from several threads at once, each with its own extent; the bytes are valid only during
// the call.
using TakeExtent = std::function<Result<void>(const MemoryExtent&)>;

class MemorySource {
  public:
    virtual ~MemorySource() = default;
    virtual uint64_t size() const = 0;
    // The extent that holds `offset`: a whole number of `page`s (the region's page size) that
    // includes the one holding it. Its bytes stay valid until the next call.
    virtual Result<MemoryExtent> extent_at(uint64_t offset, uint64_t page) = 0;
    // Hands `take` extents that together hold what `runs` (a working set) cover, none twice and
    // none overlapping another, from several threads at once: each is fetched, checked and
    // installed while the next ones are on their way. The first error (the source's or take's)
    // ends it.
    virtual Result<void> deliver(std::span<const PageRun> runs, const TakeExtent& take) = 0;
};

// The snapshot's memory file, mapped: no copy of its own; a working set's runs are handed out in
// pieces, to as many threads as the host has cores (eight at most).
class MappedMemory final : public MemorySource {
  public:
    explicit MappedMemory(std::span<const uint8_t> memory) : memory_(memory) {}
    uint64_t size() const override { return memory_.size(); }
    Result<MemoryExtent> extent_at(uint64_t offset, uint64_t page) override;
    Result<void> deliver(std::span<const PageRun> runs, const TakeExtent& take) override;

  private:
    std::span<const uint8_t> memory_;
};

}  // namespace ember::snapshot
