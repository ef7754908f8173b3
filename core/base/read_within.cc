#include "core/base/read_within.h"

#include <fcntl.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"

namespace ember {
namespace {

// Shared by the caller and the reading thread: whichever is last frees it.
struct Reading {
    UniqueFd fd;
    std::vector<FileRange> ranges;
    std::mutex mutex;
    std::condition_variable done_changed;
    bool done = false;
    Result<void> result;
};

// What one read takes at most. Not zeroed when made, and no larger than the largest range: the
// reads are to fill the page cache, and a page of the buffer costs a fault the first time it is
// written (3 us on a paravirtual KVM host; a restore's page-in reads a page or two).
struct Buffer {
    explicit Buffer(const std::vector<FileRange>& ranges) {
        for (const auto& r : ranges) size = std::max<uint64_t>(size, std::min(r.size, kMost));
        bytes = std::make_unique_for_overwrite<uint8_t[]>(size);
    }
    static constexpr uint64_t kMost = 64 << 10;
    uint64_t size = 0;
    std::unique_ptr<uint8_t[]> bytes;
};

Result<void> read_all(const Reading& r) {
    Buffer buffer(r.ranges);
    for (const auto& range : r.ranges) {
        for (uint64_t at = 0; at < range.size;) {
            const uint64_t n = std::min<uint64_t>(range.size - at, buffer.size);
            const ssize_t got = retry_on_eintr([&] {
                return ::pread(r.fd.get(), buffer.bytes.get(), n,
                               static_cast<off_t>(range.offset + at));
            });
            if (got < 0)
                return fail_errno("reading at offset " + std::to_string(range.offset + at));
            if (got == 0) break;  // past the end: the caller checked the size, nothing to wait on
            at += static_cast<uint64_t>(got);
        }
    }
    return {};
}

// Readers started and not yet done: process-wide, as the threads are.
std::atomic<int> g_waiting{0};

// Whether `range` is in the page cache whole: read without waiting (RWF_NOWAIT), it comes back at
// once or not at all. Any failure says no: the thread reads it then, and says why.
bool cached(int fd, const FileRange& range, const Buffer& buffer) {
    for (uint64_t at = 0; at < range.size;) {
        const uint64_t n = std::min<uint64_t>(range.size - at, buffer.size);
        iovec iov{buffer.bytes.get(), n};
        const ssize_t got =
            ::preadv2(fd, &iov, 1, static_cast<off_t>(range.offset + at), RWF_NOWAIT);
        if (got <= 0) return got == 0;
        at += static_cast<uint64_t>(got);
    }
    return true;
}

}  // namespace

Result<void> read_within(int fd, std::vector<FileRange> ranges, std::chrono::milliseconds bound) {
    {
        const Buffer buffer(ranges);
        std::erase_if(ranges, [&](const FileRange& r) { return cached(fd, r, buffer); });
    }
    if (ranges.empty()) return {};
    if (g_waiting.load(std::memory_order_relaxed) >= kMaxLeft) {
        auto e = fail(std::to_string(kMaxLeft) +
                      " earlier reads of files on it still wait: its file system has not answered");
        e.error().kind = ErrorKind::Unavailable;
        return e;
    }
    auto reading = std::make_shared<Reading>();
    reading->fd = UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!reading->fd.valid()) return fail_errno("dup");
    reading->ranges = std::move(ranges);
    try {
        g_waiting.fetch_add(1, std::memory_order_relaxed);
        std::thread([reading] {
            auto result = read_all(*reading);
            g_waiting.fetch_sub(1, std::memory_order_relaxed);
            std::lock_guard lock(reading->mutex);
            reading->result = std::move(result);
            reading->done = true;
            reading->done_changed.notify_all();
        }).detach();
    } catch (const std::system_error& e) {
        g_waiting.fetch_sub(1, std::memory_order_relaxed);
        return fail(std::string("cannot start a thread to read with: ") + e.what());
    }
    std::unique_lock lock(reading->mutex);
    if (!reading->done_changed.wait_for(lock, bound, [&] { return reading->done; })) {
        auto e = fail("its file system has not answered a read for " +
                      std::to_string(bound.count()) + " ms");
        e.error().kind = ErrorKind::Unavailable;
        return e;
    }
    return reading->result;
}

}  // namespace ember
