// A read-only drive's image in a store (snapshot/store/manifest.h), read at any offset: each read
// brings in the chunks it spans, checked against their names by the store they come from (through
// the host's cache, where there is one), and keeps the last few, as a guest reading its root file
// system reads on where it left off. Chunks of zeros are never fetched.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_store.h"
#include "snapshot/store/manifest.h"

namespace ember::snapshot {

struct ImageCounts {
    uint64_t reads = 0;          // reads answered
    uint64_t fetched = 0;        // chunks asked of the store (or the cache in front of it)
    uint64_t fetched_bytes = 0;  // their bytes
    uint64_t failed = 0;         // reads that could not be answered
};

class ChunkedImage {
  public:
    // How many chunks an image keeps after a read (each at most kMaxChunkSize).
    static constexpr size_t kKept = 4;

    // `file` (one of `manifest`'s) and both the others must outlive the image.
    ChunkedImage(const Manifest& manifest, const ChunkedFile& file, ChunkStore& store)
        : manifest_(manifest), file_(file), store_(store) {}

    uint64_t size() const { return file_.bytes; }
    // Fills `out` from `offset`, short only at the image's end. Called from several threads.
    Result<size_t> read(uint64_t offset, std::span<uint8_t> out);
    ImageCounts counts() const;

  private:
    Result<ChunkBytes> chunk(uint64_t index);

    const Manifest& manifest_;
    const ChunkedFile& file_;
    ChunkStore& store_;
    mutable std::mutex mutex_;
    struct Kept {
        uint64_t index;
        ChunkBytes bytes;
    };
    std::vector<Kept> kept_;  // most recently used last
    ImageCounts counts_;
};

}  // namespace ember::snapshot
