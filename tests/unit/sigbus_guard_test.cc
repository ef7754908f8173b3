// A restored VM whose memory file is truncated under it ends with a message naming the guest
// address and the memory file; a SIGBUS anywhere else still kills the process as SIGBUS does.
#include "snapshot/restore/sigbus_guard.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>

namespace ember {
namespace {
using snapshot::SigbusGuard;

constexpr uint64_t kSize = 2 * 4096;

// A memory file of kSize bytes, unlinked at once.
int memory_file() {
    char path[] = "/tmp/ember-sigbus-XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0) std::abort();
    ::unlink(path);
    if (::ftruncate(fd, kSize) != 0) std::abort();
    return fd;
}

GuestMemory mapped(int fd) {
    std::array<MemoryRegionSpec, 1> spec{{{0, kSize}}};
    auto mem = GuestMemory::map_file(spec, fd);
    if (!mem) std::abort();
    return std::move(*mem);
}

TEST(SigbusGuard, GuardsTheGuestMemoryOnlyWhileItLives) {
    int fd = memory_file();
    GuestMemory mem = mapped(fd);
    const uint8_t* base = mem.regions()[0].mapping.data();
    {
        SigbusGuard guard(mem, "the memory file /m could not serve the page");
        EXPECT_TRUE(SigbusGuard::guards(base));
        EXPECT_TRUE(SigbusGuard::guards(base + kSize - 1));
        EXPECT_FALSE(SigbusGuard::guards(base + kSize));
        EXPECT_FALSE(SigbusGuard::guards(&fd));
    }
    EXPECT_FALSE(SigbusGuard::guards(base));
    ::close(fd);
}

TEST(SigbusGuardDeathTest, ATruncatedMemoryFileEndsTheProcessWithItsCause) {
    EXPECT_EXIT(
        {
            int fd = memory_file();
            GuestMemory mem = mapped(fd);
            // A path from the API may hold a newline: it is escaped, and forges no line.
            SigbusGuard guard(mem, "the memory file /m\nx could not serve the page");
            if (::ftruncate(fd, 0) != 0) std::abort();
            volatile uint8_t v = mem.regions()[0].mapping.data()[4096];
            (void)v;
            std::exit(0);
        },
        ::testing::ExitedWithCode(1),
        ":ERROR\\] guest memory at 0x1000 could not be provided \\(ember's own access to it raised "
        "SIGBUS\\): the memory file /m\\\\nx could not serve the page\n");
}

TEST(SigbusGuardDeathTest, ASigbusOutsideGuestMemoryIsNotClaimed) {
    EXPECT_EXIT(
        {
            int guest_fd = memory_file();
            GuestMemory mem = mapped(guest_fd);
            SigbusGuard guard(mem, "the memory file /m could not serve the page");
            int other = memory_file();
            void* p = ::mmap(nullptr, kSize, PROT_READ, MAP_SHARED, other, 0);
            if (p == MAP_FAILED || ::ftruncate(other, 0) != 0) std::abort();
            volatile uint8_t v = static_cast<const uint8_t*>(p)[0];
            (void)v;
            std::exit(0);
        },
        ::testing::KilledBySignal(SIGBUS), "");
}

}  // namespace
}  // namespace ember
