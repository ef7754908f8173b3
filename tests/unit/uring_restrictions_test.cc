// A block device's ring once restricted: its own operations on the registered image work; any
// other operation, an unregistered fd, or another register call is refused by the kernel.
#include "virtio/block/uring_restrictions.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/support/ember_process.h"

namespace ember::virtio {
namespace {

class RestrictedRing : public ::testing::Test {
  protected:
    void SetUp() override {
        path = dir.write("image", std::string(4096, 'x'));
        fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::io_uring_queue_init(4, &ring, IORING_SETUP_R_DISABLED), 0);
        ASSERT_EQ(::io_uring_register_files(&ring, &fd, 1), 0);
        auto r = restrict_and_enable(ring);
        ASSERT_TRUE(r) << r.error().message;
    }
    void TearDown() override {
        ::io_uring_queue_exit(&ring);
        ::close(fd);
    }
    // Submits one prepared SQE and returns its completion's result.
    int complete() {
        EXPECT_EQ(::io_uring_submit(&ring), 1);
        io_uring_cqe* cqe = nullptr;
        EXPECT_EQ(::io_uring_wait_cqe(&ring, &cqe), 0);
        int res = cqe->res;
        ::io_uring_cqe_seen(&ring, cqe);
        return res;
    }

    testing::TempDir dir;
    std::string path;
    int fd = -1;
    io_uring ring{};
    char buf[512] = {};
};

TEST_F(RestrictedRing, ReadsAndWritesTheRegisteredImage) {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_read(sqe, 0, buf, sizeof buf, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
    EXPECT_EQ(complete(), 512);
    EXPECT_EQ(buf[0], 'x');
    sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
    sqe->flags |= IOSQE_FIXED_FILE;
    EXPECT_EQ(complete(), 0);
}

TEST_F(RestrictedRing, AnUnregisteredFdIsRefused) {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_read(sqe, fd, buf, sizeof buf, 0);
    EXPECT_EQ(complete(), -EACCES);
}

TEST_F(RestrictedRing, AnotherOperationIsRefused) {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
    ::io_uring_prep_openat(sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
    EXPECT_EQ(complete(), -EACCES);
}

TEST_F(RestrictedRing, OnlyTheFileUpdateRegisterCallIsAllowed) {
    iovec iov{buf, sizeof buf};
    EXPECT_EQ(::io_uring_register_buffers(&ring, &iov, 1), -EACCES);
    int other = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(other, 0);
    EXPECT_EQ(::io_uring_register_files_update(&ring, 0, &other, 1), 1);
    ::close(other);
}

}  // namespace
}  // namespace ember::virtio
