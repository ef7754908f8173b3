// Kernel images as an attacker would hand them to ember: ELF vmlinux files (program headers,
// PVH notes) and bzImages (setup header, sizes, offsets), recognised by their magic as ember does
// and loaded into a bounded guest memory with a hole in it. A kernel is refused with a reason or
// taken in a shape the boot code can use: it lies wholly in guest memory, starts in guest memory,
// and its setup header fits the zero page's slot for it.
#include <asm/bootparam.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/arch/x86_64/kernel_loader.h"
#include "fuzz/support/require.h"

using namespace ember;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const GuestMemory mem = [] {
        const MemoryRegionSpec specs[] = {{0, 4 << 20}, {5 << 20, 1 << 20}};
        return std::move(*GuestMemory::create_anonymous(specs));
    }();
    static const int fd = ::memfd_create("kernel", MFD_CLOEXEC);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    require(fd >= 0 && ::ftruncate(fd, 0) == 0, "a scratch kernel file");
    if (size > 0)
        require(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size), "the kernel is written");

    auto image = x86::load_kernel(mem, path);
    if (!image) {
        require(!image.error().message.empty(), "a refusal says why");
        if (std::getenv("EMBER_FUZZ_VERBOSE"))
            std::fprintf(stderr, "%s\n", image.error().message.c_str());
        return 0;
    }
    require(x86::check_fits(mem, image->entry, image->entry + 1).has_value(),
            "a kernel starts in guest memory");
    require(image->end <= (6 << 20), "a kernel ends inside guest memory");
    require(image->setup_header.size() <= sizeof(setup_header),
            "a setup header fits the zero page's slot");
    require(image->cmdline_max > 0, "a kernel takes at least an empty command line");
    return 0;
}
