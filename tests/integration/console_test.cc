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
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "core/base/unique_fd.h"
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

// An ember whose console and log the test reads as it waits. A wait ends as soon as ember can no
// longer print what it waits for (it exited, or was stopped, as SIGTTOU and SIGTTIN stop a
// background job that touches its terminal), so a failure costs seconds, not the failsafe; and
// report() says how ember ended and what it logged or, if it still runs, where its threads wait.
// Going out of scope kills ember: none outlives its test to spin its guest through later ones.
class WatchedEmber {
  public:
    WatchedEmber(const std::string& config, int in_fd) {
        int out[2], err[2];
        if (::pipe2(out, O_CLOEXEC) != 0) return;
        if (::pipe2(err, O_CLOEXEC) != 0) {
            ::close(out[0]);
            ::close(out[1]);
            return;
        }
        out_.reset(out[0]);
        err_.reset(err[0]);
        pid_ = spawn_ember(config, in_fd, out[1], err[1]);
        ::close(out[1]);
        ::close(err[1]);
    }
    ~WatchedEmber() {
        if (pid_ <= 0 || ended_) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    WatchedEmber(const WatchedEmber&) = delete;
    WatchedEmber& operator=(const WatchedEmber&) = delete;

    bool started() const { return pid_ > 0; }

    // Whether the console shows `needle` within `timeout`.
    bool wait_for_console(const std::string& needle, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (console_.find(needle) == std::string::npos) {
            if (!out_.valid() || stop_signal_ != 0 || std::chrono::steady_clock::now() >= deadline)
                return false;
            pump(100ms);
        }
        return true;
    }

    // ember's exit status; -1 if a signal ended or stopped it, or it still runs after `timeout`
    // (then it is left running for report() to look at).
    int wait_exit(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!ended_) {
            if (stop_signal_ != 0 || std::chrono::steady_clock::now() >= deadline) return -1;
            pump(10ms);
        }
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    }

    std::string report() {
        for (int i = 0; i < 64 && pump(0ms); ++i) {
        }
        // Both pipes at their end: ember is on its way out, which waitpid shows a moment later.
        for (int i = 0; i < 100 && !ended_ && !out_.valid() && !err_.valid(); ++i) pump(10ms);
        std::string r;
        if (ended_ && WIFEXITED(status_)) {
            r = "ember exited with status " + std::to_string(WEXITSTATUS(status_));
        } else if (ended_) {
            r = "ember died of signal " + std::to_string(WTERMSIG(status_)) + " (" +
                ::strsignal(WTERMSIG(status_)) + ")";
        } else if (stop_signal_ != 0) {
            r = "ember was stopped by signal " + std::to_string(stop_signal_) + " (" +
                ::strsignal(stop_signal_) + ")";
        } else {
            r = "ember still runs; its threads:\n" + threads();
        }
        return r + "\nits console: '" + console_ + "'\nits stderr:\n" + log_;
    }

  private:
    // Notes whether ember ended or stopped, then reads what its console and log hold, waiting up
    // to `wait` for something; whether anything was read.
    bool pump(std::chrono::milliseconds wait) {
        int status = 0;
        if (!ended_ && ::waitpid(pid_, &status, WNOHANG | WUNTRACED) == pid_) {
            if (WIFSTOPPED(status)) {
                stop_signal_ = WSTOPSIG(status);
            } else {
                ended_ = true;
                status_ = status;
            }
        }
        pollfd fds[2] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(wait.count())) <= 0) return false;
        const bool console = read_into(out_, fds[0].revents, console_);
        const bool log = read_into(err_, fds[1].revents, log_);
        return console || log;
    }

    static bool read_into(UniqueFd& fd, short revents, std::string& text) {
        if (!fd.valid() || !(revents & (POLLIN | POLLHUP | POLLERR))) return false;
        char buf[4096];
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            text.append(buf, static_cast<size_t>(n));
            return true;
        }
        if (n == 0 || errno != EINTR) fd.reset();
        return false;
    }

    // A hang is explained by where it waits: each thread's state, wait channel and kernel stack
    // (the stack only for root).
    std::string threads() const {
        std::string r;
        std::error_code ec;
        const std::string task = "/proc/" + std::to_string(pid_) + "/task";
        for (const auto& entry : std::filesystem::directory_iterator(task, ec)) {
            const std::string dir = entry.path().string();
            const std::string stat = read_file(dir + "/stat");
            const size_t name_end = stat.rfind(") ");
            std::string comm = read_file(dir + "/comm");
            if (!comm.empty() && comm.back() == '\n') comm.pop_back();
            r += entry.path().filename().string() + " " + comm + " state " +
                 (name_end == std::string::npos ? "?" : stat.substr(name_end + 2, 1)) + " wchan " +
                 read_file(dir + "/wchan") + "\n" + read_file(dir + "/stack");
        }
        return r;
    }

    UniqueFd out_;
    UniqueFd err_;
    pid_t pid_ = -1;
    bool ended_ = false;
    int status_ = 0;
    int stop_signal_ = 0;
    std::string console_;
    std::string log_;
};

TEST(Console, TerminalInputReachesTheGuestAndTheTerminalIsRestored) {
    // Close-on-exec: ember gets the terminal as its stdin and none of the test's other descriptors,
    // the master side among them.
    UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(master.valid());
    ASSERT_EQ(::grantpt(master.get()), 0);
    ASSERT_EQ(::unlockpt(master.get()), 0);
    UniqueFd slave(::open(::ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(slave.valid());
    termios before{};
    ASSERT_EQ(::tcgetattr(slave.get(), &before), 0);
    ASSERT_TRUE(before.c_lflag & ICANON);

    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("echo")));
    WatchedEmber ember(config, slave.get());
    ASSERT_TRUE(ember.started());
    ASSERT_TRUE(ember.wait_for_console("ready\n", kFailsafe)) << ember.report();
    termios during{};
    ASSERT_EQ(::tcgetattr(slave.get(), &during), 0);
    EXPECT_FALSE(during.c_lflag & (ICANON | ECHO)) << "ember puts the terminal in raw mode";
    ASSERT_EQ(::write(master.get(), "ping\r", 5), 5);
    ASSERT_TRUE(ember.wait_for_console("got: ping\n", kFailsafe)) << ember.report();
    ASSERT_EQ(ember.wait_exit(kFailsafe), 0) << ember.report();

    termios after{};
    ASSERT_EQ(::tcgetattr(slave.get(), &after), 0);
    EXPECT_EQ(after.c_lflag, before.c_lflag) << "terminal settings restored on exit";
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
