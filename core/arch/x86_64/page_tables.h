// Identity page tables for the 64-bit boot protocol: the first 1 GiB mapped with 2 MiB pages.
#pragma once

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::x86 {

inline constexpr uint64_t kIdentityMappedBytes = 1ull << 30;

Result<void> write_identity_page_tables(const GuestMemory& mem);

}  // namespace ember::x86
