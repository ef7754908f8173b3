// A host-wide cache of a store's chunks, shared by every restore on the host: a folder of chunks
// named as in the store, spread over 256 subfolders by the name's first byte (every thread that
// adds a file to one folder waits on that folder's lock, so one folder made eight fetching threads
// spin on it), bounded in bytes. Ten clones of one function fetch each chunk once: a fetch holds a
// lock (an open-file-description lock, one of 65,536 by the name's first two bytes: a byte of
// one of 16 files in the folder "lock", by the first hex digit) that every other process wanting
// a chunk of those bytes waits on, as this process's other threads wait on its list of the locks
// it holds, and looks in the cache again once it has it. The kernel looks through a file's locks
// one by one at every lock and unlock, and a restore holds hundreds while its working set goes
// in: in one file, that took 10% of a restore's handler's time, more with each restore at once.
// (More files would cost a new cache more to make, in the fetches' path.) A fetched chunk goes to
// the VM first; a thread of its own, at the lowest priority, writes it to the cache after, and only
// then lets the lock go, so that the write costs a restore nothing while others still find the
// chunk once it is there. What a restore holds back for the writer is bounded in bytes: past that
// the writes start, the fetches writing too where the writer is behind, so that a large working set
// is kept whole. A chunk is checked against its name once each time the host starts: the file
// carries the boot's ID (a user xattr) from when it was written from checked bytes or last checked,
// and one without this boot's ID is checked before it is read. A process that dies leaves only a
// temporary file, never a named one, so only the host's own crash can leave a chunk whose bytes are
// not yet on the disk, and that takes a new boot; where the folder takes no user xattrs, every read
// is checked. A bad one is fetched again. Past its bound the least recently used chunks go, and
// snapshots' views (snapshot_view.h) with them (a chunk's time is its file's, renewed on a hit
// once it is a minute old); a VM never needs the cache's copy once its pages are installed, and a
// reader that has a chunk open keeps it.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "snapshot/store/chunk_id.h"
#include "snapshot/store/chunk_store.h"

namespace ember::snapshot {

// The user xattr a cached file carries: the ID of the boot that checked its bytes.
inline constexpr const char* kCheckedAttr = "user.ember.checked";

struct CacheCounts {
    std::atomic<uint64_t> hits{0};
    std::atomic<uint64_t> hashed{0};   // of the hits: checked, not found checked since the boot
    std::atomic<uint64_t> fetched{0};  // from the store, into the cache
    std::atomic<uint64_t> bad{0};      // cached chunks that failed their check, fetched again
    std::atomic<uint64_t> evicted{0};
    // Checked by a pack's sum alone and not kept: not what their names say, or written by a fetch
    // (past what the writer holds) that would pay the hash the sum saved it.
    std::atomic<uint64_t> refused{0};
};

// "N chunks found there (N hashed again), N fetched into it, N found bad and fetched again, N let
// go".
std::string describe(const CacheCounts& counts);

class ChunkCache final : public ChunkStore {
  public:
    // Makes `folder` where missing; what it holds is counted (and trimmed) once a chunk is kept.
    // `origin` must outlive the cache. A fetch waits at most `lock_wait` for another's of the same
    // lock, then fetches the chunk itself: a process stopped while it holds a lock delays the
    // others, never stops them. `boot` is the host's boot ID where empty (a test's stands in for
    // another boot).
    static Result<std::unique_ptr<ChunkCache>> open(
        const std::string& folder, uint64_t max_bytes, ChunkStore& origin,
        std::chrono::milliseconds lock_wait = std::chrono::seconds(30), std::string boot = {});

    // Writes what it has queued first.
    ~ChunkCache() override;
    ChunkCache(const ChunkCache&) = delete;
    ChunkCache& operator=(const ChunkCache&) = delete;

    Result<ChunkBytes> get(const ChunkId& id, uint64_t length) override;
    // One range of the pack from the store for the entries the cache lacks whose locks it can
    // take at once (or that this process holds: a byte of 65,536 that another of its chunks
    // holds, as get() fetches them): an entry another process's fetch holds is left null, for
    // get() to wait on, so that two restores at once still fetch each chunk once, but for bytes
    // the range brought anyway. Those the cache has are left null too, for get() to read and
    // check. What it brings is written to the cache as get()'s fetches are.
    Unpacked get_packed(const ChunkId& pack, uint64_t offset,
                        std::span<const PackedChunk> entries) override;
    // Waits until every chunk fetched so far is in the cache (or could not be kept); writes must
    // not be held.
    void flush();
    // While held, fetched chunks wait to be written (what a restore does before its VM runs is
    // what the guest waits on); letting go writes them. A fetch that has to wait for another
    // process's lock lets go, as that process may be waiting for this one's. A hold ends by itself
    // a tenth of the lock wait after it began: each chunk held back holds its lock, and a restore
    // whose store trickles (a slow or a hostile one) would otherwise keep every other process
    // that wants a chunk under those locks waiting the whole lock wait.
    void hold_writes(bool held);

    const CacheCounts& counts() const { return counts_; }

    const std::string& folder() const { return folder_; }
    uint64_t max_bytes() const { return max_bytes_; }
    // Whether the file carries this boot's ID; and marks it so.
    bool checked_this_boot(int fd) const;
    void mark_checked(int fd) const;
    // `bytes` added to the folder beside the chunks (a snapshot's view, snapshot_view.h): counted
    // against the bound, which may let the least recently used chunks and views go.
    void added_beside(uint64_t bytes);

    // Where the cache keeps chunk `id`, under its folder; the lock its fetch holds, of 65,536;
    // and where that lock is, under the folder.
    static std::string path_of(const ChunkId& id);
    static off_t lock_byte(const ChunkId& id);
    struct LockPlace {
        std::string file;
        off_t byte;
    };
    static LockPlace lock_place(off_t lock);

  private:
    ChunkCache(std::string folder, UniqueFd dir, UniqueFd locks, uint64_t max_bytes,
               ChunkStore& origin, std::chrono::milliseconds lock_wait, std::string boot)
        : folder_(std::move(folder)),
          dir_(std::move(dir)),
          lock_dir_(std::move(locks)),
          max_bytes_(max_bytes),
          origin_(origin),
          lock_wait_(lock_wait),
          boot_(std::move(boot)) {}
    // The chunk from the cache, checked where this boot has not; nothing where it is missing or
    // bad (a bad one is removed).
    ChunkBytes cached(const ChunkId& id, uint64_t length);
    // Whether the cache has a file of chunk `id`'s name and length (unread, unchecked).
    bool in_cache(const ChunkId& id, uint64_t length) const;
    Result<void> keep(const ChunkId& id, const std::vector<uint8_t>& bytes);
    // Hands a fetched chunk, and the lock held for it (if any), to the writer; `by_sum`: checked
    // by its stored bytes' sum alone, so hashed to its name before it is kept. Where the queue is
    // full it lets held writes go and writes the queue's first chunks itself until its own fits.
    void queue(const ChunkId& id, ChunkBytes bytes, std::optional<off_t> held, bool by_sum = false);
    // Writes the queue's first chunk to the cache and lets its lock go; under queue_mutex_, which
    // it lets go meanwhile. `by_fetch`: on a fetching thread, not the writer's.
    void write_first(std::unique_lock<std::mutex>& guard, bool by_fetch = false);
    void write_queued();
    // Takes the lock of `id`'s first two bytes and returns it, to be let go with unlock()
    // (nothing: waited too long, or the lock could not be taken, or the chunk or another of its
    // lock's turned up in this process's queue, the chunk then in `queued`). Without `wait`, one
    // try: nothing where another fetch holds it, `mine` set where that fetch is this process's
    // (another of its threads', or a chunk of the same byte queued).
    std::optional<off_t> lock(const ChunkId& id, uint64_t length, ChunkBytes& queued,
                              bool wait = true, bool* mine = nullptr);
    // Lock `lock`'s file (-1 where it cannot be opened); and, under queue_mutex_, its lock let go.
    int lock_file(off_t lock);
    void unlock_locked(off_t lock);
    void unlock(off_t lock);
    // The chunk, where this process has fetched it and not yet written it; under queue_mutex_.
    ChunkBytes find_queued(const ChunkId& id, uint64_t length) const;
    // Counts the folder, removes dead writers' files, and the least recently used chunks and views
    // past nine tenths of the bound when it is over.
    void evict();

    std::string folder_;
    UniqueFd dir_;
    UniqueFd lock_dir_;
    // This process's description of each lock file, opened as first used: all its locks in a file
    // on one description, which other processes' locks shut out and its own threads share.
    std::mutex lock_files_mutex_;
    std::array<UniqueFd, 16> lock_files_;
    std::array<bool, 16> lock_file_failed_{};
    uint64_t max_bytes_;
    ChunkStore& origin_;
    std::chrono::milliseconds lock_wait_;
    std::string boot_;
    std::mutex evicting_;
    std::once_flag counted_once_;
    std::atomic<uint64_t> counted_{0};  // the folder's bytes when this process last counted them
    std::atomic<uint64_t> written_{0};  // bytes this process added since
    CacheCounts counts_;

    struct Pending {
        ChunkId id;
        ChunkBytes bytes;
        std::optional<off_t> lock;
        bool by_sum = false;
    };
    std::mutex queue_mutex_;
    std::condition_variable queue_changed_;
    std::deque<Pending> queue_;
    // The queue's chunks and those being written, by name.
    std::unordered_map<ChunkId, ChunkBytes, ChunkIdHash> queued_by_id_;
    uint64_t queued_bytes_ = 0;
    std::set<off_t> held_locks_;         // the locks this process holds, fetching or queued
    unsigned writing_ = 0;               // chunks taken off the queue and not yet kept
    std::multiset<off_t> queued_locks_;  // the locks the queue's chunks hold
    bool held_ = false;
    std::chrono::steady_clock::time_point hold_ends_;
    bool closing_ = false;
    std::thread writer_;  // started by the first chunk fetched
};

}  // namespace ember::snapshot
