#include "snapshot/store/chunk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "core/base/file_io.h"
#include "snapshot/store/store_files.h"

namespace ember::snapshot {

namespace {

bool is_chunk_name(std::string_view name) {
    return ChunkId::parse(name).has_value();
}

}  // namespace

Result<std::unique_ptr<ChunkCache>> ChunkCache::open(const std::string& folder, uint64_t max_bytes,
                                                     ChunkStore& origin,
                                                     std::chrono::milliseconds lock_wait) {
    EMBER_TRY(make_folder(folder), "chunk cache");
    EMBER_TRY(make_folder(folder + "/locks"), "chunk cache");
    UniqueFd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return fail_errno("chunk cache " + folder);
    std::unique_ptr<ChunkCache> cache(
        new ChunkCache(folder, std::move(dir), max_bytes, origin, lock_wait));  // NOLINT: private
    return cache;
}

std::optional<std::vector<uint8_t>> ChunkCache::cached(const ChunkId& id, uint64_t length) {
    const std::string name = id.hex();
    UniqueFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd.valid()) return std::nullopt;
    struct stat st{};
    // Another length than the manifest's is a miss, not a bad chunk: a manifest cannot make the
    // cache let go of a good chunk that another snapshot's restores use.
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != length)
        return std::nullopt;
    std::vector<uint8_t> bytes(length);
    if (!pread_exact(fd.get(), bytes, 0) || !check_chunk(id, length, bytes)) {
        ++counts_.bad;
        // The file read, not one another process has renamed in since.
        struct stat now{};
        if (::fstatat(dir_.get(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
            now.st_ino == st.st_ino && now.st_dev == st.st_dev)
            ::unlinkat(dir_.get(), name.c_str(), 0);
        return std::nullopt;
    }
    ::futimens(fd.get(), nullptr);  // used now: last to go
    return bytes;
}

UniqueFd ChunkCache::lock(const ChunkId& id) {
    const std::string name = "locks/" + id.hex().substr(0, 4);
    UniqueFd fd(
        ::openat(dir_.get(), name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return fd;
    const auto deadline = std::chrono::steady_clock::now() + lock_wait_;
    auto pause = std::chrono::microseconds(200);
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) return UniqueFd();
        if (std::chrono::steady_clock::now() >= deadline) return UniqueFd();
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
    return fd;
}

Result<std::vector<uint8_t>> ChunkCache::get(const ChunkId& id, uint64_t length) {
    if (auto hit = cached(id, length)) {
        ++counts_.hits;
        return std::move(*hit);
    }
    const UniqueFd held = lock(id);
    // Another fetch of the chunk may have ended while this one waited.
    if (auto hit = cached(id, length)) {
        ++counts_.hits;
        return std::move(*hit);
    }
    auto bytes = origin_.get(id, length);
    EMBER_TRY(bytes);
    ++counts_.fetched;
    // A cache that cannot keep the chunk (a full disk) costs the next restore a fetch, not this one
    // its chunk.
    (void)keep(id, *bytes);
    return bytes;
}

Result<void> ChunkCache::keep(const ChunkId& id, const std::vector<uint8_t>& bytes) {
    // The folder is counted before the first chunk kept, not at the start: a restore that finds
    // every chunk here never reads the folder whole.
    std::call_once(counted_once_, [this] { evict(); });
    EMBER_TRY(write_named(dir_.get(), id.hex(), bytes), "chunk cache");
    const uint64_t added = written_ += bytes.size();
    if (counted_ + added > max_bytes_) evict();
    return {};
}

void ChunkCache::evict() {
    const std::lock_guard guard(evicting_);
    struct Entry {
        timespec used;
        uint64_t bytes;
        std::string name;
    };
    std::vector<Entry> chunks;
    uint64_t total = 0;
    const int fd = ::dup(dir_.get());
    DIR* dir = fd < 0 ? nullptr : ::fdopendir(fd);
    if (dir == nullptr) {
        if (fd >= 0) ::close(fd);
        return;
    }
    ::rewinddir(dir);
    const auto now = ::time(nullptr);
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        struct stat st{};
        if (::fstatat(dir_.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (is_chunk_name(name)) {
            chunks.push_back({st.st_mtim, static_cast<uint64_t>(st.st_size), std::string(name)});
            total += static_cast<uint64_t>(st.st_size);
        } else if (name.starts_with(".") && name.find(".tmp-") != std::string_view::npos &&
                   now - st.st_mtim.tv_sec > 60) {
            ::unlinkat(dir_.get(), e->d_name, 0);  // a writer that died
        }
    }
    ::closedir(dir);
    if (total > max_bytes_) {
        std::sort(chunks.begin(), chunks.end(), [](const Entry& a, const Entry& b) {
            return a.used.tv_sec != b.used.tv_sec ? a.used.tv_sec < b.used.tv_sec
                                                  : a.used.tv_nsec < b.used.tv_nsec;
        });
        const uint64_t goal = max_bytes_ / 10 * 9;
        for (const auto& c : chunks) {
            if (total <= goal) break;
            if (::unlinkat(dir_.get(), c.name.c_str(), 0) == 0) {
                total -= c.bytes;
                ++counts_.evicted;
            }
        }
    }
    counted_ = total;
    written_ = 0;
}

}  // namespace ember::snapshot
