#include "core/arch/x86_64/page_tables.h"

#include <array>

#include "core/arch/x86_64/layout.h"

namespace ember::x86 {
namespace {

constexpr uint64_t kPresent = 1 << 0;
constexpr uint64_t kWritable = 1 << 1;
constexpr uint64_t kHugePage = 1 << 7;  // PS: the entry maps 2 MiB, not a table

}  // namespace

Result<void> write_identity_page_tables(const GuestMemory& mem) {
    EMBER_TRY(mem.write_obj<uint64_t>(kPml4Addr, kPdptAddr | kPresent | kWritable));
    EMBER_TRY(mem.write_obj<uint64_t>(kPdptAddr, kPdAddr | kPresent | kWritable));
    std::array<uint64_t, 512> pd;
    for (uint64_t i = 0; i < pd.size(); ++i) pd[i] = (i << 21) | kPresent | kWritable | kHugePage;
    return mem.write_obj(kPdAddr, pd);
}

}  // namespace ember::x86
