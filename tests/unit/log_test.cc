// The log's sink can change while other threads log: no line ever lands in a descriptor the
// caller closed and the process reused for something else (a disk image, say).
// Levels are named as Firecracker names them.
#include "core/base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "core/base/log_limit.h"
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

// The lines `write` logs, as the sink got them.
template <typename Write>
std::string logged(Write write) {
    testing::TempDir dir;
    const std::string path = dir.path() + "/log";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    log::set_fd(fd);
    write();
    log::set_fd(-1);
    ::close(fd);
    return testing::read_file(path);
}

// A string from outside (a config file's path, an --id) cannot end a line and forge the next: its
// control characters are written as escapes, whichever way it entered.
TEST(Log, ControlCharactersInAMessageAreEscapedSoNoLineCanBeForged) {
    const std::string text = logged([] {
        log::always(
            "path /img\n2026-01-01T00:00:00.000000000 [anonymous-instance:ember:ERROR] "
            "forged\r\t\x1b[31m\x7f end");
    });
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    EXPECT_NE(text.find("path /img\\n2026-01-01T00:00:00.000000000 [anonymous-instance:ember:"
                        "ERROR] forged\\r\\t\\x1b[31m\\x7f end\n"),
              std::string::npos)
        << text;
}

TEST(Log, AnInstanceIdIsEscapedAsAMessageIs) {
    log::set_instance_id("vm\n2026 [x:y:ERROR] z");
    const std::string text = logged([] { log::always("hello"); });
    log::set_instance_id("anonymous-instance");
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    EXPECT_NE(text.find("[vm\\n2026 [x:y:ERROR] z:"), std::string::npos) << text;
}

// A message whose escapes do not fit is cut at a whole escape, and says so.
TEST(Log, ALongMessageOfEscapesIsCutAtAWholeOne) {
    const std::string text = logged([] { log::always(std::string(3000, '\x01')); });
    ASSERT_TRUE(text.ends_with("\\x01 [cut]\n")) << text.substr(text.size() - 40);
    EXPECT_LE(text.size(), log::kMaxLine);
}

TEST(LineLimit, LetsABurstThroughThenALineAPeriodSayingHowManyItDropped) {
    log::LineLimit limit(3, std::chrono::seconds(10));
    const auto t0 = log::LineLimit::Clock::time_point{} + std::chrono::hours(1);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(limit.admit(t0), 0u) << i;
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limit.admit(t0 + std::chrono::seconds(5)));
    EXPECT_EQ(limit.dropped(), 1000u);
    EXPECT_EQ(limit.admit(t0 + std::chrono::seconds(10)), 1000u) << "the next line says so";
    EXPECT_FALSE(limit.admit(t0 + std::chrono::seconds(11)));
    EXPECT_EQ(limit.admit(t0 + std::chrono::seconds(20)), 1u);
    // A long quiet fills the burst again, and no more.
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(limit.admit(t0 + std::chrono::hours(1))) << i;
    EXPECT_FALSE(limit.admit(t0 + std::chrono::hours(1)));
}

// Places that each stay under their own limit still share one budget: what it refuses is dropped
// and counted as if the place had.
TEST(LineLimit, ASharedBudgetDropsWhatItCannotTake) {
    log::ByteBudget budget(300, 1);
    log::LineLimit a(10, std::chrono::hours(1), &budget), b(10, std::chrono::hours(1), &budget);
    const std::string text = logged([&] {
        for (int i = 0; i < 5; ++i) {
            a.warn([] { return std::string(100, 'a'); });
            b.warn([] { return std::string(100, 'b'); });
        }
    });
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    EXPECT_EQ(a.dropped() + b.dropped(), 9u);
}

TEST(LineLimit, TheSharedBudgetBoundsBytesAcrossPlaces) {
    log::ByteBudget budget(1000, 100);
    const auto t0 = log::LineLimit::Clock::time_point{} + std::chrono::hours(1);
    EXPECT_TRUE(budget.take(600, t0));
    EXPECT_FALSE(budget.take(600, t0));
    EXPECT_TRUE(budget.take(400, t0));
    EXPECT_FALSE(budget.take(100, t0 + std::chrono::milliseconds(500)));
    EXPECT_TRUE(budget.take(100, t0 + std::chrono::seconds(1)));
    EXPECT_TRUE(budget.take(1000, t0 + std::chrono::hours(1)));
    EXPECT_FALSE(budget.take(1, t0 + std::chrono::hours(1)));
}

// What a place writes through its limit: its burst, then nothing until its period has passed, the
// dropped lines counted in the next one.
TEST(LineLimit, WritesTheBurstAndDropsTheRest) {
    log::ByteBudget budget(1 << 20, 1 << 20);
    log::LineLimit limit(2, std::chrono::hours(1), &budget);
    int made = 0;
    const std::string text = logged([&] {
        for (int i = 0; i < 50; ++i)
            limit.warn([&] {
                ++made;
                return "the guest did it again";
            });
    });
    EXPECT_EQ(made, 2) << "a dropped line is never even made";
    EXPECT_EQ(testing::count_lines_containing(text, "the guest did it again"), 2) << text;
    EXPECT_EQ(limit.dropped(), 48u);
}

}  // namespace
}  // namespace ember
