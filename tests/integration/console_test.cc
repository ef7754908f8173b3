// The serial console's host side: input from a terminal (raw, restored on exit), and a reader that
// stops reading, which must neither stall the guest nor keep ember from exiting.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/support/ember_process.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

std::string guest(const std::string& name) {
    return std::string(EMBER_GUEST_DIR) + "/" + name + ".elf";
}

pid_t spawn_ember(const std::string& config, int in_fd, int out_fd, int err_fd) {
    return spawn({EMBER_BINARY, "--no-api", "--config-file", config}, in_fd, out_fd, err_fd);
}

// waitpid with a deadline; SIGKILLs and fails the test if the child does not exit in time.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            ADD_FAILURE() << "ember did not exit in time";
            return -1;
        }
        std::this_thread::sleep_for(10ms);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Console, TerminalInputReachesTheGuestAndTheTerminalIsRestored) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(master, 0);
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
    ASSERT_GE(slave, 0);
    termios before{};
    ASSERT_EQ(::tcgetattr(slave, &before), 0);
    ASSERT_TRUE(before.c_lflag & ICANON);

    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("echo")));
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    int devnull = ::open("/dev/null", O_WRONLY);
    pid_t pid = spawn_ember(config, slave, out[1], devnull);
    ::close(out[1]);

    EXPECT_NE(read_until(out[0], "ready\n", kFailsafe).find("ready\n"), std::string::npos);
    termios during{};
    ASSERT_EQ(::tcgetattr(slave, &during), 0);
    EXPECT_FALSE(during.c_lflag & (ICANON | ECHO)) << "ember puts the terminal in raw mode";
    ASSERT_EQ(::write(master, "ping\r", 5), 5);
    EXPECT_NE(read_until(out[0], "got: ping\n", kFailsafe).find("got: ping\n"), std::string::npos);
    EXPECT_EQ(wait_exit(pid, kFailsafe), 0);

    termios after{};
    ASSERT_EQ(::tcgetattr(slave, &after), 0);
    EXPECT_EQ(after.c_lflag, before.c_lflag) << "terminal settings restored on exit";
    ::close(out[0]);
    ::close(devnull);
    ::close(slave);
    ::close(master);
}

TEST(Console, AReaderThatStopsReadingStallsNeitherTheGuestNorTheExit) {
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("flood")));
    int out[2], err[2];
    ASSERT_EQ(::pipe(out), 0);
    ASSERT_EQ(::pipe(err), 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    pid_t pid = spawn_ember(config, devnull, out[1], err[1]);
    ::close(out[1]);
    ::close(err[1]);

    // Nobody reads stdout: the guest's 200 KiB exceed the pipe and ember's buffer together. The
    // guest still finishes and resets, and ember still exits after a bounded wait for the reader.
    // 200 KiB are 200 K port writes, each an exit: minutes where everything is emulated.
    EXPECT_EQ(wait_exit(pid, kFailsafe), 0);
    std::string log = read_until(err[0], "exited:", kFailsafe);
    EXPECT_EQ(count_lines_containing(log, "exited: guest reset the VM"), 1) << log;
    EXPECT_EQ(count_lines_containing(log, "bytes of guest console output were dropped"), 1) << log;
    std::string console = read_until(out[0], "never", kFailsafe);
    EXPECT_GT(console.size(), 0u);
    EXPECT_LT(console.size(), 200u * 1024)
        << "what did not fit was dropped, not queued without bound";
    ::close(out[0]);
    ::close(err[0]);
    ::close(devnull);
}

// --serial-out names a file ember may create and truncate: never through a symbolic link, whose
// target (say a file of the user's) would be truncated, and never blocking on a FIFO nobody reads.
TEST(Console, SerialOutRefusesASymlinkAndAFifoWithoutReaderAndTruncatesOnlyFiles) {
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("hello")));
    auto serial_out = [&](const std::string& path) {
        return run_process(
            {EMBER_BINARY, "--no-api", "--config-file", config, "--serial-out", path}, kFailsafe);
    };
    auto precious = dir.write("precious", "keep me");
    const std::string link = dir.path() + "/console-link";
    ASSERT_EQ(::symlink(precious.c_str(), link.c_str()), 0);
    auto r = serial_out(link);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("--serial-out " + link + ": is a symbolic link"), std::string::npos)
        << r.err;
    EXPECT_EQ(read_file(precious), "keep me");

    const std::string fifo = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    r = serial_out(fifo);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("--serial-out " + fifo + ": a FIFO with no reader"), std::string::npos)
        << r.err;

    auto file = dir.write("console", std::string(10000, 'x'));
    r = serial_out(file);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_file(file), "hello from the test guest\n");
    r = serial_out("/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace ember::testing
