// Whole reads at an offset, retrying short reads and EINTR: files from outside may be short.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>

#include "vmm/base/error.h"

namespace ember {

inline Result<void> pread_exact(int fd, std::span<uint8_t> out, uint64_t offset) {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n =
            ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read");
        }
        if (n == 0)
            return fail("unexpected end of file at offset " + std::to_string(offset + done));
        done += static_cast<size_t>(n);
    }
    return {};
}

inline Result<uint64_t> file_size(int fd) {
    struct stat st{};
    if (::fstat(fd, &st) < 0) return fail_errno("fstat");
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return fail("not a regular file");
    return static_cast<uint64_t>(st.st_size);
}

}  // namespace ember
