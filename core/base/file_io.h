// Whole reads and writes, retrying short ones and EINTR: files from outside may be short, Linux
// moves at most 0x7ffff000 bytes in one call, and a signal can cut a write to a pipe short.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>

#include "core/base/error.h"

namespace ember {

// Calls `call` again while it fails with EINTR (a signal arrived before anything was done); returns
// its last result, errno as it left it.
template <typename Call>
auto retry_on_eintr(Call call) {
    decltype(call()) r;
    do {
        r = call();
    } while (r < 0 && errno == EINTR);
    return r;
}

// Whether two stat results are the same file (the same inode of the same device).
inline bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

inline Result<void> pread_exact(int fd, std::span<uint8_t> out, uint64_t offset) {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = retry_on_eintr([&] {
            return ::pread(fd, out.data() + done, out.size() - done,
                           static_cast<off_t>(offset + done));
        });
        if (n < 0) return fail_errno("read");
        if (n == 0)
            return fail("unexpected end of file at offset " + std::to_string(offset + done));
        done += static_cast<size_t>(n);
    }
    return {};
}

namespace detail {

// `write_from(bytes, done)` writes from `bytes` (what is left) and returns what write(2) would.
template <typename WriteFrom>
Result<void> write_whole(std::span<const uint8_t> bytes, WriteFrom write_from) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = retry_on_eintr([&] { return write_from(bytes.subspan(done), done); });
        if (n < 0) return fail_errno("write");
        if (n == 0)
            return fail("write: nothing written of the last " +
                        std::to_string(bytes.size() - done) + " bytes");
        done += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace detail

inline Result<void> write_all(int fd, std::span<const uint8_t> bytes) {
    return detail::write_whole(bytes, [fd](std::span<const uint8_t> rest, size_t) {
        return ::write(fd, rest.data(), rest.size());
    });
}

inline Result<void> pwrite_all(int fd, std::span<const uint8_t> bytes, uint64_t offset) {
    return detail::write_whole(bytes, [fd, offset](std::span<const uint8_t> rest, size_t done) {
        return ::pwrite(fd, rest.data(), rest.size(), static_cast<off_t>(offset + done));
    });
}

inline Result<uint64_t> file_size(int fd) {
    struct stat st{};
    if (::fstat(fd, &st) < 0) return fail_errno("fstat");
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return fail("not a regular file");
    return static_cast<uint64_t>(st.st_size);
}

}  // namespace ember
