#include "vmm/machine/generation_id.h"

#include <sys/random.h>

#include <array>

#include "core/arch/x86_64/acpi.h"
#include "core/base/file_io.h"

namespace ember {

Result<void> write_new_generation_id(const GuestMemory& mem, uint64_t addr) {
    std::array<uint8_t, x86::kVmGenIdBytes> id{};
    size_t got = 0;
    while (got < id.size()) {
        ssize_t n =
            retry_on_eintr([&] { return ::getrandom(id.data() + got, id.size() - got, 0); });
        if (n < 0) return fail_errno("VM generation ID: getrandom");
        got += static_cast<size_t>(n);
    }
    EMBER_TRY(mem.write(addr, id), "VM generation ID");
    return {};
}

}  // namespace ember
