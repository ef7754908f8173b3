// core/memory: which pages of a mapping this process holds, and whether each is still the mapped
// file's page or a private copy, from /proc/self/pagemap. For a guest restored from a memory file,
// that is which pages the guest (or ember for it) has read and which it has written since the load.
// mincore() cannot say this: it reports the file's page cache, which every clone of one snapshot
// shares, so clones would see each other's touches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/base/error.h"

namespace ember {

enum class Residency : uint8_t {
    Absent,   // never touched, or given back
    Shared,   // mapped from the file (or a shared page) as it is there: read, not written
    Private,  // this process's own copy: written (or swapped out, which only a copy can be)
};

// One entry per page of [addr, addr + len), which must be page-aligned.
Result<std::vector<Residency>> resident_pages(const void* addr, size_t len);

}  // namespace ember
