#include "snapshot/memory_merge.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "core/base/file_io.h"

namespace ember::snapshot {

Result<uint64_t> merge_diff(int base, int diff) {
    struct stat b{}, d{};
    if (::fstat(base, &b) < 0) return fail_errno("base memory file");
    if (::fstat(diff, &d) < 0) return fail_errno("diff memory file");
    if (b.st_size != d.st_size)
        return fail("the base is " + std::to_string(b.st_size) + " bytes and the diff " +
                    std::to_string(d.st_size) + ": not a diff of that base");
    std::vector<uint8_t> buf(static_cast<size_t>(std::min<off_t>(d.st_size, 1 << 20)));
    off_t pos = 0;
    uint64_t copied = 0;
    while (pos < d.st_size) {
        off_t data = ::lseek(diff, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) break;  // no data past pos
            return fail_errno("diff memory file: SEEK_DATA");
        }
        off_t hole = ::lseek(diff, data, SEEK_HOLE);
        if (hole < 0) return fail_errno("diff memory file: SEEK_HOLE");
        // The file may have grown since fstat (a writer beside us): copy only what was there.
        hole = std::min<off_t>(hole, d.st_size);
        for (off_t at = data; at < hole;) {
            const auto want =
                static_cast<size_t>(std::min<off_t>(hole - at, static_cast<off_t>(buf.size())));
            ssize_t n = ::pread(diff, buf.data(), want, at);
            if (n < 0) return fail_errno("reading the diff at " + std::to_string(at));
            if (n == 0)
                return fail("the diff ended at " + std::to_string(at) + " while it was read");
            EMBER_TRY(
                pwrite_all(base, {buf.data(), static_cast<size_t>(n)}, static_cast<uint64_t>(at)),
                "writing the base at " + std::to_string(at));
            at += n;
            copied += static_cast<uint64_t>(n);
        }
        pos = hole;
    }
    if (::fsync(base) < 0) return fail_errno("base memory file: fsync");
    return copied;
}

}  // namespace ember::snapshot
