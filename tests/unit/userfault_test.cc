// The handler's side of a userfaultfd (core/memory/userfault.h) on memory of this process: a copy
// resolves a missing page, and memory that is no longer mapped, as a VMM that exits in order
// leaves it, is told apart (ErrorKind::Unmapped) for the handler to check whether the VMM ended.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "core/memory/userfault.h"

namespace ember {
namespace {

class UserfaultTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto uffd = Userfault::create();
        ASSERT_TRUE(uffd) << uffd.error().message;
        uffd_.emplace(std::move(*uffd));
        memory_ =
            ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_NE(memory_, MAP_FAILED);
        ASSERT_TRUE(uffd_->register_missing(memory_, kBytes));
    }
    void TearDown() override {
        if (memory_ != MAP_FAILED) ::munmap(memory_, kBytes);
    }
    uint64_t at(size_t offset) const { return reinterpret_cast<uint64_t>(memory_) + offset; }

    static constexpr size_t kBytes = 4 * 4096;
    std::optional<Userfault> uffd_;
    void* memory_ = MAP_FAILED;
};

TEST_F(UserfaultTest, ACopyPutsItsBytesInAMissingPageAndASecondIsNoError) {
    std::vector<uint8_t> page(4096, 0x5a);
    ASSERT_TRUE(uffd_->copy(at(4096), page.data(), page.size()));
    EXPECT_EQ(std::memcmp(static_cast<uint8_t*>(memory_) + 4096, page.data(), page.size()), 0);
    ASSERT_TRUE(uffd_->copy(at(4096), page.data(), page.size())) << "EEXIST: resolved already";
    ASSERT_TRUE(uffd_->zero(at(2 * 4096), 4096));
    EXPECT_EQ(static_cast<uint8_t*>(memory_)[2 * 4096], 0);
}

TEST_F(UserfaultTest, MemoryNoLongerMappedIsToldApartFromOtherFailures) {
    ASSERT_EQ(::munmap(memory_, kBytes), 0);
    memory_ = MAP_FAILED;
    std::vector<uint8_t> page(4096, 0x5a);
    auto copied = uffd_->copy(at(0), page.data(), page.size());
    ASSERT_FALSE(copied);
    EXPECT_EQ(copied.error().kind, ErrorKind::Unmapped) << copied.error().message;
    auto zeroed = uffd_->zero(at(4096), 4096);
    ASSERT_FALSE(zeroed);
    EXPECT_EQ(zeroed.error().kind, ErrorKind::Unmapped) << zeroed.error().message;
}

}  // namespace
}  // namespace ember
