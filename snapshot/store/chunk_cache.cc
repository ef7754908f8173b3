#include "snapshot/store/chunk_cache.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "core/base/file_io.h"
#include "snapshot/store/snapshot_view.h"
#include "snapshot/store/store_files.h"

namespace ember::snapshot {

namespace {

bool is_chunk_name(std::string_view name) {
    return ChunkId::parse(name).has_value();
}

bool is_subfolder_name(std::string_view name) {
    return name.size() == 2 && name.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

std::string ChunkCache::path_of(const ChunkId& id) {
    const std::string hex = id.hex();
    std::string path = hex.substr(0, 2);
    path += '/';
    path += hex;
    return path;
}

off_t ChunkCache::lock_byte(const ChunkId& id) {
    return static_cast<off_t>(id.digest[0]) << 8 | id.digest[1];
}

namespace {

// The folder of the lock files (a folder where the cache's first layout had one file, "locks",
// which an older handler may still hold locks in).
constexpr char kLockFolder[] = "lock";

// Lock `lock`'s file, by its first hex digit, and its byte there, by the other three.
size_t lock_file_index(off_t lock) {
    return static_cast<size_t>(lock >> 12) & 15;
}
std::string lock_file_name(off_t lock) {
    return {"0123456789abcdef"[lock_file_index(lock)]};
}
off_t lock_file_byte(off_t lock) {
    return lock & 0xfff;
}

// Lock `lock`'s byte in its file, to take (F_WRLCK) or let go (F_UNLCK).
struct flock lock_range(off_t lock, short type) {
    struct flock range{};
    range.l_type = type;
    range.l_whence = SEEK_SET;
    range.l_start = lock_file_byte(lock);
    range.l_len = 1;
    return range;
}

}  // namespace

ChunkCache::LockPlace ChunkCache::lock_place(off_t lock) {
    return {std::string(kLockFolder) + '/' + lock_file_name(lock), lock_file_byte(lock)};
}

Result<std::unique_ptr<ChunkCache>> ChunkCache::open(const std::string& folder, uint64_t max_bytes,
                                                     ChunkStore& origin,
                                                     std::chrono::milliseconds lock_wait,
                                                     std::string boot) {
    if (boot.empty()) {
        const UniqueFd id(::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC));
        char text[64];
        const ssize_t n = id.valid() ? ::read(id.get(), text, sizeof text) : -1;
        if (n < 0) return fail_errno("chunk cache: the host's boot ID");
        boot.assign(text, static_cast<size_t>(n));
        while (!boot.empty() && boot.back() == '\n') boot.pop_back();
        if (boot.empty()) return fail("chunk cache: the host's boot ID is empty");
    }
    EMBER_TRY(make_folder(folder), "chunk cache");
    UniqueFd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return fail_errno("chunk cache " + folder);
    if (::mkdirat(dir.get(), kLockFolder, 0755) != 0 && errno != EEXIST)
        return fail_errno("chunk cache " + folder + ": its lock folder");
    UniqueFd locks(
        ::openat(dir.get(), kLockFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!locks.valid()) return fail_errno("chunk cache " + folder + ": its lock folder");
    // Its files are made as first used: a folder they cannot be made in is said now, not found
    // by every fetch.
    if (::faccessat(locks.get(), ".", W_OK, AT_EACCESS) != 0)
        return fail_errno("chunk cache " + folder + ": its lock folder");
    std::unique_ptr<ChunkCache> cache(new ChunkCache(folder, std::move(dir), std::move(locks),
                                                     max_bytes, origin,
                                                     lock_wait,  // NOLINT: private
                                                     std::move(boot)));
    return cache;
}

ChunkBytes ChunkCache::cached(const ChunkId& id, uint64_t length) {
    const std::string name = path_of(id);
    UniqueFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd.valid()) return nullptr;
    struct stat st{};
    // Another length than the manifest's is a miss, not a bad chunk: a manifest cannot make the
    // cache let go of a good chunk that another snapshot's restores use.
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != length)
        return nullptr;
    std::vector<uint8_t> bytes(length);
    const bool checked = checked_this_boot(fd.get());
    const bool read = pread_exact(fd.get(), bytes, 0).has_value();
    if (read && !checked) ++counts_.hashed;
    if (!read || (!checked && !check_chunk(id, length, bytes))) {
        ++counts_.bad;
        // The file read, not one another process has renamed in since.
        struct stat now{};
        if (::fstatat(dir_.get(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            same_file(now, st))
            ::unlinkat(dir_.get(), name.c_str(), 0);
        return nullptr;
    }
    if (!checked) mark_checked(fd.get());
    // Used now: last to go. Not on every hit: each renewal is a write of the inode, which cost a
    // warm restore of 512 chunks 9 ms here, and a minute is fine enough for a cache of GiBs.
    if (::time(nullptr) - st.st_mtim.tv_sec >= 60) ::futimens(fd.get(), nullptr);
    return std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
}

bool ChunkCache::checked_this_boot(int fd) const {
    char mark[64];
    const ssize_t n = ::fgetxattr(fd, kCheckedAttr, mark, sizeof mark);
    return n == static_cast<ssize_t>(boot_.size()) && boot_.compare(0, boot_.size(), mark, n) == 0;
}

void ChunkCache::mark_checked(int fd) const {
    // Where the folder takes no user xattrs the chunk is simply checked again next time.
    (void)::fsetxattr(fd, kCheckedAttr, boot_.data(), boot_.size(), 0);
}

int ChunkCache::lock_file(off_t lock) {
    const std::lock_guard guard(lock_files_mutex_);
    const size_t index = lock_file_index(lock);
    UniqueFd& fd = lock_files_[index];
    if (!fd.valid() && !lock_file_failed_[index]) {
        fd = UniqueFd(::openat(lock_dir_.get(), lock_file_name(lock).c_str(),
                               O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        lock_file_failed_[index] = !fd.valid();  // tried once, not at every fetch
    }
    return fd.get();
}

std::optional<off_t> ChunkCache::lock(const ChunkId& id, uint64_t length, ChunkBytes& queued,
                                      bool wait, bool* mine) {
    const off_t lock = lock_byte(id);
    struct flock range = lock_range(lock, F_WRLCK);
    // Opened (made, in a new cache) before the queue's mutex is taken, which every fetch waits on.
    const int file = lock_file(lock);
    const auto deadline = std::chrono::steady_clock::now() + lock_wait_;
    auto pause = std::chrono::microseconds(200);
    std::unique_lock guard(queue_mutex_);
    for (;;) {
        // The chunk may have been fetched by this process and not yet written (held back while a
        // working set goes in), or another of its byte's chunks may be: waiting for that lock
        // would wait for the working set, which waits for this. The chunk is taken from the
        // queue, or fetched without the lock.
        queued = find_queued(id, length);
        if (queued || queued_locks_.contains(lock)) {
            if (mine != nullptr) *mine = true;
            return std::nullopt;
        }
        if (mine != nullptr) *mine = held_locks_.contains(lock);
        // A byte this process holds is another of its threads' fetch, which queues its chunk or
        // lets the byte go: this thread waits for either.
        if (!held_locks_.contains(lock)) {
            held_locks_.insert(lock);  // before the lock: no lock held and not listed
            if (::fcntl(file, F_OFD_SETLK, &range) == 0) return lock;
            const int err = errno;
            // A lock the kernel could not take (no lock file, no room for locks) keeps this
            // process's threads apart all the same; other processes may fetch the chunk too.
            if (err != EAGAIN && err != EACCES && err != EINTR) return lock;
            held_locks_.erase(lock);
            // Another process's lock: it may be waiting in turn for a lock this one holds for a
            // chunk held back, so this process's writes go ahead from now on, and every lock it
            // holds is let go once its chunk is written. No two restores then wait on each other.
            if (held_) {
                held_ = false;
                queue_changed_.notify_all();
            }
        }
        if (!wait || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        queue_changed_.wait_for(guard, pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
}

void ChunkCache::unlock_locked(off_t lock) {
    struct flock range = lock_range(lock, F_UNLCK);
    // The file was opened before its lock was taken, and queue_mutex_ orders that before this.
    // One that could not be opened (-1) held no lock in the kernel.
    if (const int file = lock_files_[lock_file_index(lock)].get(); file >= 0)
        (void)::fcntl(file, F_OFD_SETLK, &range);
    held_locks_.erase(lock);
    queue_changed_.notify_all();
}

void ChunkCache::unlock(off_t lock) {
    const std::lock_guard guard(queue_mutex_);
    unlock_locked(lock);
}

ChunkBytes ChunkCache::find_queued(const ChunkId& id, uint64_t length) const {
    const auto it = queued_by_id_.find(id);
    return it != queued_by_id_.end() && it->second->size() == length ? it->second : nullptr;
}

Result<ChunkBytes> ChunkCache::get(const ChunkId& id, uint64_t length) {
    if (auto hit = cached(id, length)) {
        ++counts_.hits;
        return hit;
    }
    ChunkBytes queued;
    // The lock until the chunk is queued, which hands it to the writer.
    struct Held {
        ChunkCache& cache;
        std::optional<off_t> byte;
        ~Held() {
            if (byte) cache.unlock(*byte);
        }
    } held{*this, lock(id, length, queued)};
    if (queued) {
        ++counts_.hits;
        return queued;
    }
    // Another fetch of the chunk may have ended while this one waited.
    if (auto hit = cached(id, length)) {
        ++counts_.hits;
        return hit;
    }
    auto bytes = origin_.get(id, length);
    EMBER_TRY(bytes);
    ++counts_.fetched;
    queue(id, *bytes, std::exchange(held.byte, std::nullopt));
    return bytes;
}

Unpacked ChunkCache::get_packed(const ChunkId& pack, uint64_t offset,
                                std::span<const PackedChunk> entries) {
    Unpacked got;
    got.chunks.resize(entries.size());
    got.by_sum.resize(entries.size());
    // Each lock taken is let go here unless handed to the writer with its chunk.
    struct Held {
        ChunkCache& cache;
        std::vector<std::optional<off_t>> locks;
        ~Held() {
            for (const auto& l : locks)
                if (l) cache.unlock(*l);
        }
    } held{*this, std::vector<std::optional<off_t>>(entries.size())};
    // Entries to fetch: under their locks, or without one where this process holds the byte; and
    // those another process is fetching, handed out (not kept) where the range brings them anyway.
    std::vector<bool> fetch(entries.size(), false), others(entries.size(), false);
    size_t first = entries.size(), last = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        const PackedChunk& e = entries[i];
        if (in_cache(e.id, e.length)) continue;
        ChunkBytes queued;
        bool mine = false;
        held.locks[i] = lock(e.id, e.length, queued, false, &mine);
        if (queued) continue;                             // get() finds it in the queue
        if (held.locks[i] && in_cache(e.id, e.length)) {  // another's fetch, ended just now
            unlock(*std::exchange(held.locks[i], std::nullopt));
            continue;
        }
        if (!held.locks[i] && !mine) {  // another process's fetch: get() waits for it
            others[i] = true;
            continue;
        }
        fetch[i] = true;
        first = std::min(first, i);
        last = i;
    }
    if (first == entries.size()) return got;
    // One range, from the first chunk to fetch to the last: what lies between (a chunk the cache
    // has, or another process is fetching: rare, past a crash or an eviction) comes too.
    const auto span = entries.subspan(first, last - first + 1);
    auto bytes =
        origin_.get_range(pack, offset + stored_bytes(entries.first(first)), stored_bytes(span));
    if (!bytes) {
        got.failed = true;
        return got;  // the locks go with `held`: get() fetches each alone
    }
    got.reads = 1;
    got.bytes = bytes->size();
    std::vector<ChunkBytes> brought(span.size());
    std::vector<bool> take(span.size());
    for (size_t i = 0; i < span.size(); ++i) take[i] = fetch[first + i] || others[first + i];
    std::vector<bool> by_sum;
    unpack(span, *bytes, take, brought, by_sum);
    // Those fetched without a lock go to the writer first: a lock is let go once its chunk is
    // written, and another process that then takes it must find every chunk of its byte that
    // this read brought already in the cache.
    for (const bool locked : {false, true})
        for (size_t i = 0; i < span.size(); ++i) {
            if (!brought[i] || held.locks[first + i].has_value() != locked) continue;
            got.by_sum[first + i] = by_sum[i];
            if (others[first + i]) {
                got.chunks[first + i] = std::move(brought[i]);
                continue;
            }
            ++counts_.fetched;
            got.chunks[first + i] = brought[i];
            queue(span[i].id, std::move(brought[i]),
                  std::exchange(held.locks[first + i], std::nullopt), by_sum[i]);
        }
    return got;
}

bool ChunkCache::in_cache(const ChunkId& id, uint64_t length) const {
    struct stat st{};
    return ::fstatat(dir_.get(), path_of(id).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == length;
}

namespace {

// What the writer holds at most (the chunks' bytes, shared with the restore that fetched them).
constexpr uint64_t kMaxQueuedBytes = uint64_t{128} << 20;

}  // namespace

void ChunkCache::queue(const ChunkId& id, ChunkBytes bytes, std::optional<off_t> held,
                       bool by_sum) {
    std::unique_lock guard(queue_mutex_);
    auto drop = [&] {
        if (held) unlock_locked(*held);
    };
    // Fetched twice (without the lock: another chunk of its byte was queued): kept once, under
    // this fetch's lock where the first had none.
    if (queued_by_id_.contains(id)) {
        if (held)
            for (auto& p : queue_)
                if (p.id == id && !p.lock) {
                    queued_locks_.insert(*held);
                    p.lock = held;
                    return;
                }
        return drop();
    }
    if (!writer_.joinable()) {
        try {
            writer_ = std::thread([this] { write_queued(); });
        } catch (const std::system_error&) {
            return drop();  // no thread, no cache: the restore goes on
        }
    }
    // Found by other fetches from here on, as if queued, while it makes room.
    queued_by_id_.emplace(id, bytes);
    if (held) queued_locks_.insert(*held);
    if (queued_bytes_ + bytes->size() > kMaxQueuedBytes) {
        // A working set larger than what is held back: it is written from now on, as it comes,
        // and this fetch writes what is first in line until its own fits, not waiting on a
        // writer at the lowest priority, which a busy host may not run for long.
        held_ = false;
        queue_changed_.notify_all();
        while (!queue_.empty() && queued_bytes_ + bytes->size() > kMaxQueuedBytes)
            write_first(guard, true);
    }
    queued_bytes_ += bytes->size();
    queue_.push_back({id, std::move(bytes), held, by_sum});
    queue_changed_.notify_all();
}

void ChunkCache::write_first(std::unique_lock<std::mutex>& guard, bool by_fetch) {
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    ++writing_;
    guard.unlock();
    // A cache that cannot keep the chunk (a full disk) costs the next restore a fetch, not this
    // one its chunk. One checked by its sum is what its own manifest said; the cache, which every
    // restore on the host reads, keeps it only as what its name says (a manifest whose sums lie
    // would otherwise put its bytes under another snapshot's chunk): hashed to it by the writer,
    // at the lowest priority, and not kept where a fetch writes it.
    if (next.by_sum && (by_fetch || !check_chunk(next.id, next.bytes->size(), *next.bytes)))
        ++counts_.refused;
    else
        (void)keep(next.id, *next.bytes);
    guard.lock();
    --writing_;
    queued_by_id_.erase(next.id);
    if (next.lock) {
        queued_locks_.erase(queued_locks_.find(*next.lock));
        unlock_locked(*next.lock);
    }
    queued_bytes_ -= next.bytes->size();
    queue_changed_.notify_all();
}

void ChunkCache::write_queued() {
    // Behind every thread that installs pages or runs a vCPU: a write to the cache can wait.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    ::pthread_setname_np(::pthread_self(), "cache_writer");
    std::unique_lock guard(queue_mutex_);
    for (;;) {
        queue_changed_.wait(guard, [this] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;  // closing, with nothing left
        if (held_ && !closing_) {
            if (!queue_changed_.wait_until(guard, hold_ends_,
                                           [this] { return closing_ || !held_; }))
                held_ = false;  // held too long: its locks keep others waiting
            continue;
        }
        write_first(guard);
    }
}

void ChunkCache::hold_writes(bool held) {
    const std::lock_guard guard(queue_mutex_);
    held_ = held;
    if (held) hold_ends_ = std::chrono::steady_clock::now() + lock_wait_ / 10;
    queue_changed_.notify_all();
}

void ChunkCache::flush() {
    std::unique_lock guard(queue_mutex_);
    queue_changed_.wait(guard, [this] { return queue_.empty() && writing_ == 0; });
}

ChunkCache::~ChunkCache() {
    {
        const std::lock_guard guard(queue_mutex_);
        closing_ = true;
        queue_changed_.notify_all();
    }
    if (writer_.joinable()) writer_.join();
}

Result<void> ChunkCache::keep(const ChunkId& id, const std::vector<uint8_t>& bytes) {
    // The folder is counted before the first chunk kept, not at the start: a restore that finds
    // every chunk here never reads the folder whole.
    std::call_once(counted_once_, [this] { evict(); });
    const std::string folder = id.hex().substr(0, 2);
    if (::mkdirat(dir_.get(), folder.c_str(), 0755) != 0 && errno != EEXIST)
        return fail_errno("chunk cache: " + folder);
    const UniqueFd sub(::openat(dir_.get(), folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!sub.valid()) return fail_errno("chunk cache: " + folder);
    // Every chunk kept was checked against its name on its way in (ChunkStore::get's promise;
    // write_first hashes one checked by its pack's sum).
    EMBER_TRY(write_named(sub.get(), id.hex(), bytes, [this](int fd) { mark_checked(fd); }),
              "chunk cache");
    const uint64_t added = written_ += bytes.size();
    if (counted_ + added > max_bytes_) evict();
    return {};
}

void ChunkCache::added_beside(uint64_t bytes) {
    std::call_once(counted_once_, [this] { evict(); });
    const uint64_t added = written_ += bytes;
    if (counted_ + added > max_bytes_) evict();
}

void ChunkCache::evict() {
    const std::lock_guard guard(evicting_);
    // What this process adds while the folder is counted may be missed by the count: it stays
    // counted as added.
    const uint64_t added_before = written_.load();
    struct Entry {
        timespec used;
        uint64_t bytes;
        std::string path;  // a chunk's under the folder; a view's name under views/
        bool view = false;
    };
    std::vector<Entry> chunks;
    uint64_t total = 0;
    const auto now = ::time(nullptr);
    std::vector<std::string> subfolders;
    for_each_entry(dir_.get(), [&](int, const char* name, const struct stat& st) {
        if (S_ISDIR(st.st_mode) && is_subfolder_name(name)) subfolders.emplace_back(name);
    });
    for (const auto& folder : subfolders) {
        const UniqueFd sub(
            ::openat(dir_.get(), folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (!sub.valid()) continue;
        for_each_entry(sub.get(), [&](int at, const char* entry, const struct stat& st) {
            const std::string_view name = entry;
            if (!S_ISREG(st.st_mode)) return;
            if (is_chunk_name(name)) {
                chunks.push_back({st.st_mtim, static_cast<uint64_t>(st.st_size),
                                  folder + "/" + std::string(name)});
                total += static_cast<uint64_t>(st.st_size);
            } else if (name.starts_with(".") && name.find(".tmp-") != std::string_view::npos &&
                       now - st.st_mtim.tv_sec > 60) {
                ::unlinkat(at, entry, 0);  // a writer that died
            }
        });
    }
    const UniqueFd views(
        ::openat(dir_.get(), kViewFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (views.valid()) {
        std::vector<std::string> stale;
        for_each_entry(views.get(), [&](int at, const char* entry, const struct stat& st) {
            const std::string_view name = entry;
            if (!S_ISDIR(st.st_mode)) return;
            if (auto use = view_use(at, entry)) {
                if (is_view_name(name)) {
                    chunks.push_back({use->used, use->bytes, std::string(name), true});
                    total += use->bytes;
                } else if (name.starts_with(".") && now - use->used.tv_sec > 600) {
                    stale.emplace_back(name);  // a maker or a remover that died
                } else if (name.starts_with(".")) {
                    total += use->bytes;  // a view being made, or removed: not to go yet
                }
            }
        });
        for (const auto& name : stale) remove_view_folder(views.get(), name);
    }
    if (total > max_bytes_) {
        std::sort(chunks.begin(), chunks.end(), [](const Entry& a, const Entry& b) {
            return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec
                                                  : a.used.tv_nsec < b.used.tv_nsec;
        });
        const uint64_t goal = max_bytes_ / 10 * 9;
        for (const auto& c : chunks) {
            if (total <= goal) break;
            if (c.view) {
                // Gone already (another process's eviction) is not counted twice.
                if (remove_view(views.get(), c.path)) ++counts_.evicted;
                total -= c.bytes;
            } else if (::unlinkat(dir_.get(), c.path.c_str(), 0) == 0) {
                total -= c.bytes;
                ++counts_.evicted;
            }
        }
    }
    counted_ = total;
    written_ -= added_before;
}

std::string describe(const CacheCounts& c) {
    return std::to_string(c.hits.load()) + " chunks found there (" +
           std::to_string(c.hashed.load()) + " hashed again), " + std::to_string(c.fetched.load()) +
           " fetched into it, " + std::to_string(c.bad.load()) + " found bad and fetched again, " +
           std::to_string(c.evicted.load()) + " let go" +
           (c.refused.load() > 0 ? ", " + std::to_string(c.refused.load()) +
                                       " checked by their pack's sums alone not kept"
                                 : "");
}

}  // namespace ember::snapshot
