#include "snapshot/memory_copy.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/base/file_io.h"

namespace ember::snapshot {

Result<uint64_t> copy_memory_file(int fd, const GuestMemory& memory) {
    uint64_t offset = 0, copied = 0;
    for (const auto& r : memory.regions()) {
        const uint64_t end = offset + r.size();
        uint64_t at = offset;
        while (at < end) {
            const off_t data = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
            if (data < 0 && errno == ENXIO) break;  // nothing but holes from here on
            if (data < 0) return fail_errno("memory file: SEEK_DATA");
            if (static_cast<uint64_t>(data) >= end) break;
            const off_t hole = ::lseek(fd, data, SEEK_HOLE);
            if (hole < 0) return fail_errno("memory file: SEEK_HOLE");
            const uint64_t from = static_cast<uint64_t>(data);
            const uint64_t to = std::min(static_cast<uint64_t>(hole), end);
            EMBER_TRY(
                pread_exact(fd, std::span(r.mapping.data() + (from - offset), to - from), from),
                "memory file");
            copied += to - from;
            at = to;
        }
        offset = end;
    }
    return copied;
}

}  // namespace ember::snapshot
