// ember's command line as Firecracker's clients use it: the flags, the start line, the version,
// bad numbers, --ready-fd, --ready-memory-mib.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "core/base/unique_fd.h"
#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/netns.h"
#include "tests/support/pids_cgroup.h"
#include "tests/support/uds_http.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

TEST(Cli, FirecrackersFlagsAreAcceptedAndMetricsPathIsHonoured) {
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("hello")));
    const std::string metrics = dir.path() + "/metrics.json";
    auto r = run_process(
        {EMBER_BINARY, "--no-api", "--config-file", config, "--metrics-path", metrics,
         "--no-seccomp", "--start-time-us", "123", "--start-time-cpu-us", "0",
         "--parent-cpu-time-us", "5", "--show-level", "--show-log-origin", "--id", "fn-42"},
        kFailsafe);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("microVM 'fn-42' exited"), std::string::npos) << r.err;
    // --show-log-origin: the file and line after the level, from the repository's root.
    EXPECT_NE(r.err.find(" [fn-42:ember:INFO:vmm/app/main.cc:"), std::string::npos) << r.err;
    std::ifstream m(metrics);
    std::string line;
    ASSERT_TRUE(std::getline(m, line)) << "metrics are written at exit";
    EXPECT_NE(line.find("\"vcpu\":{\"exit_io_in\":"), std::string::npos) << line;
}

TEST(Cli, TheLogOpensWithFirecrackersStartLineNamingBothVersions) {
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("hello")));
    const std::string log = dir.path() + "/ember.log";
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config, "--log-path", log},
                         kFailsafe);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::ifstream l(log);
    std::string first;
    ASSERT_TRUE(std::getline(l, first)) << "nothing logged";
    // Firecracker's layout: a UTC time to the nanosecond, then [instance:thread:LEVEL].
    EXPECT_TRUE(std::regex_match(
        first,
        std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[anonymous-instance:ember:INFO\] )"
                   R"(Running Firecracker v1\.7\.0 \(ember v[0-9.]+\))")))
        << first;
}

// Kata's Firecracker driver reads the first line's second word as the version (and refuses one
// below 0.21.1); Firecracker's tests match ^Firecracker v(.+) on it.
TEST(Cli, TheVersionIsSaidAsFirecrackersClientsParseIt) {
    auto r = run_process({EMBER_BINARY, "--version"}, kFailsafe);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "Firecracker v1.7.0\nember v" EMBER_VERSION "\n");
}

TEST(Cli, BadNumbersAreRefused) {
    auto r = run_process({EMBER_BINARY, "--http-api-max-payload-size", "lots"}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--http-api-max-payload-size: 'lots' is not a whole number"),
              std::string::npos)
        << r.err;
}

TEST(Cli, ReadyMemoryMustFitBelowTheMmioGap) {
    auto r = run_process({EMBER_BINARY, "--ready-memory-mib", "4096"}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--ready-memory-mib: 4096 MiB is more than the 3328 MiB below the 32-bit "
                         "MMIO gap"),
              std::string::npos)
        << r.err;
    auto words = run_process({EMBER_BINARY, "--ready-memory-mib", "lots"}, kFailsafe);
    EXPECT_EQ(words.exit_code, 1);
    EXPECT_NE(words.err.find("--ready-memory-mib: 'lots' is not a whole number"), std::string::npos)
        << words.err;
}

// The child has nothing open above stdio (spawn closes it), so descriptor 3 is not there.
TEST(Cli, AReadyFdMustBeAnOpenDescriptorAboveStdio) {
    auto stdio = run_process({EMBER_BINARY, "--ready-fd", "2"}, kFailsafe);
    EXPECT_EQ(stdio.exit_code, 1);
    EXPECT_NE(stdio.err.find("--ready-fd: 2 is not a descriptor above stdio"), std::string::npos)
        << stdio.err;
    auto closed = run_process({EMBER_BINARY, "--ready-fd", "3"}, kFailsafe);
    EXPECT_EQ(closed.exit_code, 1);
    EXPECT_NE(closed.err.find("--ready-fd 3: not an open descriptor"), std::string::npos)
        << closed.err;
    // Nor one ember opened itself (its log file, its copy of stderr).
    TempDir dir;
    auto own = run_process({EMBER_BINARY, "--log-path", dir.path() + "/log", "--ready-fd", "3"},
                           kFailsafe);
    EXPECT_EQ(own.exit_code, 1);
    EXPECT_NE(own.err.find("--ready-fd 3: not an open descriptor"), std::string::npos) << own.err;
    auto own_stderr = run_process({EMBER_BINARY, "--ready-fd", "4"}, kFailsafe);
    EXPECT_EQ(own_stderr.exit_code, 1);
    EXPECT_NE(own_stderr.err.find("--ready-fd 4: not an open descriptor"), std::string::npos)
        << own_stderr.err;
}

}  // namespace
}  // namespace ember::testing
