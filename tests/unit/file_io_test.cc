// Whole writes: a write cut short (by a signal, or by Linux's 0x7ffff000-byte cap on one call) is
// carried on until every byte is out, and a failure says why, never "write: Success".
#include "core/base/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include <thread>
#include <vector>

#include "core/base/unique_fd.h"
#include "tests/support/ember_process.h"
#include "tests/support/in_child.h"

namespace ember {
namespace {

void on_signal(int) {}

TEST(WriteAll, AWriteCutShortByASignalIsCarriedOn) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    // Without SA_RESTART, so the signal ends the blocked write(2) with what it wrote so far.
    struct sigaction sa{}, old{};
    sa.sa_handler = on_signal;
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    std::vector<uint8_t> bytes(1 << 20);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
    Result<void> written;
    std::thread writer([&] {
        written = write_all(write_end.get(), bytes);
        write_end.reset();  // the reader's end of file, whatever was written
    });
    // Bytes in the pipe: the writer is in its write(2) of 1 MiB, which the pipe cannot take whole.
    for (int queued = 0; queued == 0;) (void)::ioctl(read_end.get(), FIONREAD, &queued);
    ASSERT_EQ(::pthread_kill(writer.native_handle(), SIGUSR1), 0);
    std::vector<uint8_t> got;
    uint8_t buf[65536];
    for (ssize_t n; (n = ::read(read_end.get(), buf, sizeof buf)) > 0;)
        got.insert(got.end(), buf, buf + n);
    writer.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_TRUE(written) << written.error().message;
    EXPECT_EQ(got.size(), bytes.size());
    EXPECT_TRUE(got == bytes);
}

TEST(WriteAll, AFailureAfterAShortWriteNamesItsCause) {
    testing::TempDir dir;
    // A file size limit: the pwrite that crosses it is cut short, the next one fails with EFBIG.
    EXPECT_EQ(testing::in_child([&] {
                  ::signal(SIGXFSZ, SIG_IGN);
                  rlimit limit{8192, 8192};
                  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 1;
                  UniqueFd fd(::open((dir.path() + "/f").c_str(), O_WRONLY | O_CREAT, 0600));
                  std::vector<uint8_t> bytes(16384, 1);
                  auto r = pwrite_all(fd.get(), bytes, 4096);
                  if (r) return 2;
                  return r.error().message == "write: File too large" ? 0 : 3;
              }),
              0);
}

}  // namespace
}  // namespace ember
