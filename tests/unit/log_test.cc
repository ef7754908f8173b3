// The log's sink can change while other threads log: no line ever lands in a descriptor the
// caller closed and the process reused for something else (a disk image, say).
// Levels are named as Firecracker names them.
#include "core/base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "tests/support/ember_process.h"

namespace ember {
namespace {

TEST(Log, ChangingTheSinkUnderConcurrentLinesNeverWritesAReusedDescriptor) {
    testing::TempDir dir;
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> lines{0};
    std::thread writer([&] {
        while (!stop) {
            log::always("a line from another thread");
            ++lines;
        }
    });
    std::vector<std::string> victims;
    for (int i = 0; i < 200; ++i) {
        std::string sink = dir.path() + "/log" + std::to_string(i);
        int fd = ::open(sink.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        log::set_fd(fd);
        ::close(fd);
        // Likely gets the number just closed, as a disk image opened next would.
        std::string victim = dir.path() + "/image" + std::to_string(i);
        int image = ::open(victim.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(image, 0);
        victims.push_back(victim);
        // The writer logs at least once while the image holds the number: on a loaded host it
        // might otherwise not run at all during the loop.
        const uint64_t seen = lines;
        while (lines == seen) std::this_thread::yield();
        ::close(image);
    }
    stop = true;
    writer.join();
    log::set_fd(-1);
    for (const auto& v : victims) EXPECT_EQ(std::filesystem::file_size(v), 0u) << v;
    uintmax_t logged = 0;
    for (int i = 0; i < 200; ++i)
        logged += std::filesystem::file_size(dir.path() + "/log" + std::to_string(i));
    EXPECT_GT(logged, 0u) << "the lines went to the sinks";
}

TEST(Log, LevelsAreNamedAsFirecrackerNamesThemInAnyCase) {
    EXPECT_EQ(log::parse_level("Off"), log::Level::Off);
    EXPECT_EQ(log::parse_level("ERROR"), log::Level::Error);
    EXPECT_EQ(log::parse_level("Warning"), log::Level::Warn);
    EXPECT_EQ(log::parse_level("warn"), log::Level::Warn);
    EXPECT_EQ(log::parse_level("info"), log::Level::Info);
    EXPECT_EQ(log::parse_level("Debug"), log::Level::Debug);
    EXPECT_EQ(log::parse_level("trace"), log::Level::Debug);
    auto loud = log::parse_level("loud");
    ASSERT_FALSE(loud);
    EXPECT_NE(loud.error().message.find("'loud' is not one of"), std::string::npos);
    EXPECT_FALSE(log::parse_level(""));
}

// Firecracker's logger.missed_log_count: a line the sink did not take is counted, not lost unseen.
TEST(Log, ALineTheSinkRefusesIsCountedAsMissed) {
    const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(full, 0);
    const uint64_t before = log::missed_lines();
    log::set_fd(full);
    log::error("this line does not fit");
    log::set_fd(-1);
    ::close(full);
    EXPECT_EQ(log::missed_lines(), before + 1);
}

}  // namespace
}  // namespace ember
