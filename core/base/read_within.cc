#include "core/base/read_within.h"

#include <fcntl.h>

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

Result<void> read_all(const Reading& r) {
    std::vector<uint8_t> buffer(64 << 10);
    for (const auto& range : r.ranges) {
        for (uint64_t at = 0; at < range.size;) {
            const uint64_t n = std::min<uint64_t>(range.size - at, buffer.size());
            const ssize_t got = retry_on_eintr([&] {
                return ::pread(r.fd.get(), buffer.data(), n, static_cast<off_t>(range.offset + at));
            });
            if (got < 0)
                return fail_errno("reading at offset " + std::to_string(range.offset + at));
            if (got == 0) break;  // past the end: the caller checked the size, nothing to wait on
            at += static_cast<uint64_t>(got);
        }
    }
    return {};
}

}  // namespace

Result<void> read_within(int fd, std::vector<FileRange> ranges, std::chrono::milliseconds bound) {
    if (ranges.empty()) return {};
    auto reading = std::make_shared<Reading>();
    reading->fd = UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!reading->fd.valid()) return fail_errno("dup");
    reading->ranges = std::move(ranges);
    try {
        std::thread([reading] {
            auto result = read_all(*reading);
            std::lock_guard lock(reading->mutex);
            reading->result = std::move(result);
            reading->done = true;
            reading->done_changed.notify_all();
        }).detach();
    } catch (const std::system_error& e) {
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
