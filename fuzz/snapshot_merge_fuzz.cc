// Diff merging: a Diff memory file is sparse, its data the pages that changed. The input writes a
// diff of any shape (writes of any offset and length, holes punched back in) and a base of the same
// or another size; after merging, the base must hold the diff's pages wherever the diff has data
// and its own bytes everywhere else, and a diff of another size must leave it untouched.
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "fuzz/support/require.h"
#include "snapshot/memory_merge.h"

using namespace ember;
using fuzz::require;

namespace {

constexpr size_t kPage = 4096;

std::vector<uint8_t> contents(int fd, size_t bytes) {
    std::vector<uint8_t> out(bytes);
    require(::pread(fd, out.data(), bytes, 0) == static_cast<ssize_t>(bytes), "a file reads back");
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const int base = ::memfd_create("base", MFD_CLOEXEC);
    static const int diff = ::memfd_create("diff", MFD_CLOEXEC);
    require(base >= 0 && diff >= 0, "scratch files");
    FuzzedDataProvider in(data, size);
    const size_t pages = in.ConsumeIntegralInRange<size_t>(1, 16);
    const size_t bytes = pages * kPage;
    const bool other_size = in.ConsumeBool();
    const size_t diff_bytes =
        other_size ? bytes + kPage * in.ConsumeIntegralInRange<size_t>(1, 2) : bytes;
    require(::ftruncate(base, 0) == 0 && ::ftruncate(diff, 0) == 0 &&
                ::ftruncate(base, static_cast<off_t>(bytes)) == 0 &&
                ::ftruncate(diff, static_cast<off_t>(diff_bytes)) == 0,
            "scratch files sized");
    // Built once: instrumented byte loops would cost more than everything the merge does.
    static const std::vector<uint8_t> pattern = [] {
        std::vector<uint8_t> p(16 * kPage);
        for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 13 + 1);
        return p;
    }();
    const std::vector<uint8_t> base_bytes(pattern.begin(),
                                          pattern.begin() + static_cast<ptrdiff_t>(bytes));
    require(::pwrite(base, base_bytes.data(), bytes, 0) == static_cast<ssize_t>(bytes),
            "base written");

    // What the diff holds, and which of its pages have data.
    std::vector<uint8_t> diff_bytes_now(diff_bytes, 0);
    std::vector<uint8_t> has_data(diff_bytes / kPage, 0);
    while (in.remaining_bytes() > 0) {
        const bool punch = in.ConsumeIntegralInRange<int>(0, 3) == 0;
        const size_t at = in.ConsumeIntegralInRange<size_t>(0, diff_bytes - 1);
        const size_t len = in.ConsumeIntegralInRange<size_t>(1, diff_bytes - at);
        if (punch) {
            // Whole pages only become holes; a partial one is zeroed and keeps its data.
            require(::fallocate(diff, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                static_cast<off_t>(at), static_cast<off_t>(len)) == 0,
                    "a hole punched");
            std::memset(diff_bytes_now.data() + at, 0, len);
            for (size_t p = (at + kPage - 1) / kPage; (p + 1) * kPage <= at + len; ++p)
                has_data[p] = 0;
        } else {
            const uint8_t value = in.ConsumeIntegral<uint8_t>();
            std::vector<uint8_t> fill(len);
            std::memset(fill.data(), value, len);
            require(::pwrite(diff, fill.data(), len, static_cast<off_t>(at)) ==
                        static_cast<ssize_t>(len),
                    "diff written");
            std::memset(diff_bytes_now.data() + at, value, len);
            for (size_t p = at / kPage; p * kPage < at + len; ++p) has_data[p] = 1;
        }
    }

    auto merged = snapshot::merge_diff(base, diff);
    if (other_size) {
        require(!merged.has_value(), "a diff of another size is refused");
        require(contents(base, bytes) == base_bytes, "a refused merge leaves the base untouched");
        return 0;
    }
    require(merged.has_value(), "a diff of the same size merges");
    std::vector<uint8_t> expected = base_bytes;
    uint64_t data_bytes = 0;
    for (size_t p = 0; p < pages; ++p) {
        if (!has_data[p]) continue;
        std::copy_n(diff_bytes_now.begin() + static_cast<ptrdiff_t>(p * kPage), kPage,
                    expected.begin() + static_cast<ptrdiff_t>(p * kPage));
        data_bytes += kPage;
    }
    require(contents(base, bytes) == expected,
            "the base holds the diff's pages where it has data and its own elsewhere");
    require(*merged == data_bytes, "the bytes merged are the diff's data");
    return 0;
}
