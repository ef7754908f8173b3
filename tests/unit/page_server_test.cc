// ember-uffd's page server (snapshot/uffd/page_server.h) against a "VMM" of this process: guest
// memory registered on a userfaultfd, the handshake's connection a socket pair. A VMM that exits
// in order unmaps its memory while the working set still goes in: that is its end, not the
// handler's failure, once its connection closes; memory gone from a VMM still there is an error.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "core/memory/userfault.h"
#include "snapshot/uffd/page_server.h"

namespace ember::snapshot {
namespace {

constexpr uint64_t kPages = 16;
constexpr uint64_t kBytes = kPages * 4096;

class PageServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto uffd = Userfault::create();
        ASSERT_TRUE(uffd) << uffd.error().message;
        memory_ =
            ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_NE(memory_, MAP_FAILED);
        ASSERT_TRUE(uffd->register_missing(memory_, kBytes));
        int ends[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
        UffdHandshake h;
        h.connection = UniqueFd(ends[0]);
        vmm_end_ = UniqueFd(ends[1]);
        h.uffd = UniqueFd(::dup(uffd->fd()));
        h.regions = {{reinterpret_cast<uint64_t>(memory_), kBytes, 0, 4096}};
        server_ = PageServer::create(std::move(h), std::make_unique<MappedMemory>(snapshot_));
        ASSERT_TRUE(server_) << server_.error().message;
    }
    void TearDown() override {
        if (memory_ != MAP_FAILED) ::munmap(memory_, kBytes);
    }
    void vmm_unmaps_its_memory() {
        ASSERT_EQ(::munmap(memory_, kBytes), 0);
        memory_ = MAP_FAILED;
    }

    std::vector<uint8_t> snapshot_ = std::vector<uint8_t>(kBytes, 0x5a);
    const std::vector<PageRun> working_set_ = {{0, kPages, false}};
    void* memory_ = MAP_FAILED;
    UniqueFd vmm_end_;
    Result<PageServer> server_ = fail("not made");
};

TEST_F(PageServerTest, AWorkingSetGoesIntoTheVmmsMemory) {
    ASSERT_TRUE(server_->install_runs(working_set_));
    EXPECT_EQ(server_->counts().installed, kPages);
    EXPECT_EQ(static_cast<uint8_t*>(memory_)[kBytes - 1], 0x5a);
}

TEST_F(PageServerTest, AVmmThatUnmapsItsMemoryAndEndsEndsTheWorkingSetWithoutAnError) {
    vmm_unmaps_its_memory();
    vmm_end_ = UniqueFd();  // and its process is gone, with its end of the connection
    auto installed = server_->install_runs(working_set_);
    EXPECT_TRUE(installed) << installed.error().message;
    EXPECT_EQ(server_->counts().installed, 0u);
}

TEST_F(PageServerTest, MemoryGoneFromAVmmThatStaysIsAnError) {
    vmm_unmaps_its_memory();
    auto installed = server_->install_runs(working_set_);
    ASSERT_FALSE(installed);
    EXPECT_EQ(installed.error().kind, ErrorKind::Unmapped) << installed.error().message;
}

}  // namespace
}  // namespace ember::snapshot
