#include "core/memory/resident_pages.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"

namespace ember {
namespace {

constexpr uint64_t kPageSize = 4096;
// Documentation/admin-guide/mm/pagemap.rst: one 64-bit entry per virtual page.
constexpr uint64_t kPresent = 1ull << 63;
constexpr uint64_t kSwapped = 1ull << 62;
constexpr uint64_t kFileOrShared = 1ull << 61;
// Entries read per pread: 512 KiB of buffer for 256 MiB of mapping.
constexpr size_t kBatch = 64 * 1024;

}  // namespace

Result<std::vector<Residency>> resident_pages(const void* addr, size_t len) {
    const auto start = reinterpret_cast<uintptr_t>(addr);
    if (start % kPageSize != 0 || len % kPageSize != 0)
        return fail("resident_pages: range is not page-aligned");
    UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (!pagemap.valid())
        return fail_errno("/proc/self/pagemap (a jailed ember needs the jail's /proc)");
    const size_t pages = len / kPageSize;
    std::vector<Residency> out(pages, Residency::Absent);
    std::vector<uint64_t> entries(std::min(pages, kBatch));
    for (size_t done = 0; done < pages;) {
        const size_t n = std::min(pages - done, kBatch);
        std::span<uint8_t> bytes(reinterpret_cast<uint8_t*>(entries.data()), n * sizeof(uint64_t));
        EMBER_TRY(pread_exact(pagemap.get(), bytes, (start / kPageSize + done) * sizeof(uint64_t)),
                  "/proc/self/pagemap");
        for (size_t i = 0; i < n; ++i) {
            const uint64_t e = entries[i];
            if (e & kSwapped)
                out[done + i] = Residency::Private;
            else if (e & kPresent)
                out[done + i] = (e & kFileOrShared) ? Residency::Shared : Residency::Private;
        }
        done += n;
    }
    return out;
}

}  // namespace ember
