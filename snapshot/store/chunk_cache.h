// A host-wide cache of a store's chunks, shared by every restore on the host: a folder of chunks
// named as in the store, bounded in bytes. Ten clones of one function fetch each chunk once: a
// fetch holds a lock (an flock on one of 65,536 lock files, by the name's first two bytes) that
// every other process and thread wanting a chunk of those bytes waits on, and looks in the cache
// again once it has it. A chunk is checked against its name on every read, so a cache left by a
// crash, a full disk or a hand is never trusted; a bad one is fetched again. Past its bound the
// least recently used chunks go (a chunk's time is its file's, renewed on each hit); a VM never
// needs the cache's copy once its pages are installed, and a reader that has a chunk open keeps it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "snapshot/store/chunk_store.h"

namespace ember::snapshot {

struct CacheCounts {
    std::atomic<uint64_t> hits{0};
    std::atomic<uint64_t> fetched{0};  // from the store, into the cache
    std::atomic<uint64_t> bad{0};      // cached chunks that failed their check, fetched again
    std::atomic<uint64_t> evicted{0};
};

class ChunkCache final : public ChunkStore {
  public:
    // Makes `folder` where missing; what it holds is counted (and trimmed) once a chunk is kept.
    // `origin` must outlive the cache. A fetch waits at most `lock_wait` for another's of the same
    // lock, then fetches the chunk itself: a process stopped while it holds a lock delays the
    // others, never stops them.
    static Result<std::unique_ptr<ChunkCache>> open(
        const std::string& folder, uint64_t max_bytes, ChunkStore& origin,
        std::chrono::milliseconds lock_wait = std::chrono::seconds(30));

    Result<std::vector<uint8_t>> get(const ChunkId& id, uint64_t length) override;

    const CacheCounts& counts() const { return counts_; }

  private:
    ChunkCache(std::string folder, UniqueFd dir, uint64_t max_bytes, ChunkStore& origin,
               std::chrono::milliseconds lock_wait)
        : folder_(std::move(folder)),
          dir_(std::move(dir)),
          max_bytes_(max_bytes),
          origin_(origin),
          lock_wait_(lock_wait) {}
    // The chunk from the cache, checked; nothing where it is missing or bad (a bad one is removed).
    std::optional<std::vector<uint8_t>> cached(const ChunkId& id, uint64_t length);
    Result<void> keep(const ChunkId& id, const std::vector<uint8_t>& bytes);
    // Holds the lock of `id`'s first two bytes for as long as it lives (invalid: waited too
    // long).
    UniqueFd lock(const ChunkId& id);
    // Counts the folder, removes dead writers' files, and the least recently used chunks past
    // nine tenths of the bound when it is over.
    void evict();

    std::string folder_;
    UniqueFd dir_;
    uint64_t max_bytes_;
    ChunkStore& origin_;
    std::chrono::milliseconds lock_wait_;
    std::mutex evicting_;
    std::once_flag counted_once_;
    std::atomic<uint64_t> counted_{0};  // the folder's bytes when this process last counted them
    std::atomic<uint64_t> written_{0};  // bytes this process added since
    CacheCounts counts_;
};

}  // namespace ember::snapshot
