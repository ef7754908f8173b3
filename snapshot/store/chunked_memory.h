// A store's chunks as a restored VM's guest memory (ember-uffd --manifest): a fault brings in the
// whole chunk that holds it, fetched and checked once (a patched chunk: its base and its patch); a
// working set's chunks are fetched, checked and installed by several threads at once, before any
// vCPU runs, read from the manifest's packs a few MiB at a time where it has them (each thread its
// own range, then the chunks it brought), and chunk by chunk where not. Chunks of zeros are never
// fetched. Nothing is kept once the page server has installed it.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "snapshot/store/chunk_store.h"
#include "snapshot/store/manifest.h"
#include "snapshot/uffd/memory_source.h"

namespace ember::snapshot {

// The most the threads delivering a working set hold at once: a chunk each, or a read of a pack
// and the chunks it brought.
inline constexpr uint64_t kMaxAheadBytes = uint64_t{64} << 20;
// The chunks one read of a pack brings at most, in bytes (its range is no longer: a chunk is
// stored in no more than its bytes).
inline constexpr uint64_t kPackReadBytes = uint64_t{2} << 20;

struct ChunkCounts {
    uint64_t fetched = 0;        // chunks read from the store (a patched chunk's base and patch: 2)
    uint64_t fetched_bytes = 0;  // their bytes
    uint64_t ahead = 0;          // of them, fetched ahead for the working set
    uint64_t packed = 0;         // of those, had from a pack
    uint64_t pack_reads = 0;     // ranges of packs read
    uint64_t pack_bytes = 0;     // their bytes
};

class ChunkedMemory final : public MemorySource {
  public:
    // `fetchers`: how many chunks a working set's delivery reads at once.
    ChunkedMemory(const Manifest& manifest, ChunkStore& store, unsigned fetchers)
        : manifest_(manifest), store_(store), fetchers_(fetchers == 0 ? 1 : fetchers) {}

    uint64_t size() const override { return manifest_.memory.bytes; }
    Result<MemoryExtent> extent_at(uint64_t offset, uint64_t page) override;
    Result<void> deliver(std::span<const PageRun> runs, const TakeExtent& take) override;

    const ChunkCounts& counts() const { return counts_; }

  private:
    // Chunks a read of a pack brought, by name.
    using Brought = std::unordered_map<ChunkId, ChunkBytes, ChunkIdHash>;
    // Memory chunk `index`, put together where it is patched; `ahead`: for the working set. Its
    // pieces come from `brought` where they are there.
    Result<ChunkBytes> fetch(uint64_t index, bool ahead, const Brought& brought = {});
    // Chunk `id` of `length` bytes: from `brought`, or from the store.
    Result<ChunkBytes> piece(const ChunkId& id, uint64_t length, bool ahead,
                             const Brought& brought);
    void count(const std::vector<uint8_t>& bytes, bool ahead, bool packed = false);

    const Manifest& manifest_;
    ChunkStore& store_;
    unsigned fetchers_;
    ChunkBytes current_;  // the last chunk handed out
    std::mutex counting_;
    ChunkCounts counts_;
};

// A whole file of the manifest (the state file), its chunks fetched in order and checked.
Result<std::vector<uint8_t>> fetch_file(const Manifest& manifest, const ChunkedFile& file,
                                        ChunkStore& store);

}  // namespace ember::snapshot
