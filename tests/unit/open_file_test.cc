// Paths from outside are opened without ever blocking, and only as the kinds of file they may be.
#include "core/base/open_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/ember_process.h"

namespace ember {
namespace {

std::string error_of(const Result<UniqueFd>& r) {
    return r ? std::string() : r.error().message;
}

TEST(OpenFile, ARegularFileIsOpenedBlocking) {
    testing::TempDir dir;
    auto fd = open_file(dir.write("kernel", "bytes"), O_RDONLY);
    ASSERT_TRUE(fd) << fd.error().message;
    const int flags = ::fcntl(fd->get(), F_GETFL);
    EXPECT_EQ(flags & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(OpenFile, AFifoIsRefusedWithoutWaitingForAWriter) {
    testing::TempDir dir;
    const std::string fifo = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(error_of(open_file(fifo, O_RDONLY)), "not a regular file");
    EXPECT_EQ(error_of(open_file(fifo, O_WRONLY)), "not a regular file");
    EXPECT_EQ(error_of(open_file(fifo, O_RDONLY, FileKinds::RegularOrBlockDevice)),
              "not a regular file or block device");
}

TEST(OpenFile, DevicesAndDirectoriesAreRefused) {
    testing::TempDir dir;
    EXPECT_EQ(error_of(open_file("/dev/zero", O_RDONLY)), "not a regular file");
    EXPECT_EQ(error_of(open_file("/dev/null", O_RDWR, FileKinds::RegularOrFifo)),
              "not a regular file or FIFO");
    EXPECT_EQ(error_of(open_file(dir.path(), O_RDONLY)), "not a regular file");
}

TEST(OpenFile, AFifoForWritingNeedsAReaderAndStaysNonBlocking) {
    testing::TempDir dir;
    const std::string fifo = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_EQ(error_of(open_file(fifo, O_WRONLY | O_NONBLOCK, FileKinds::RegularOrFifo)),
              "a FIFO with no reader: No such device or address (os error 6)");
    UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader.valid());
    auto fd = open_file(fifo, O_WRONLY | O_NONBLOCK, FileKinds::RegularOrFifo);
    ASSERT_TRUE(fd) << fd.error().message;
    EXPECT_NE(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(OpenFile, OsErrorsAreWordedAsFirecrackerWordsThem) {
    testing::TempDir dir;
    EXPECT_EQ(error_of(open_file(dir.path() + "/missing", O_RDONLY)),
              "No such file or directory (os error 2)");
}

}  // namespace
}  // namespace ember
