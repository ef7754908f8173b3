// What ember counts in Firecracker's metrics groups: the console and keyboard as the guest drove
// them, the loop's events, and the signals that reached ember, which it survives where it can.
#include <signal.h>
#include <simdjson.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/api_ember.h"

namespace ember::testing {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// group.field of a metrics line, or -1 when it is not there.
int64_t field(const std::string& line, const char* group, const char* name) {
    simdjson::dom::parser parser;
    uint64_t v = 0;
    if (parser.parse(line)[group][name].get_uint64().get(v)) return -1;
    return static_cast<int64_t>(v);
}

TEST(MetricsCounts, TheConsoleAndKeyboardCountWhatTheGuestDid) {
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("hello")));
    const std::string metrics = dir.path() + "/metrics.json";
    auto r = run_process(
        {EMBER_BINARY, "--no-api", "--config-file", config, "--metrics-path", metrics}, kFailsafe);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto lines = lines_of(metrics);
    ASSERT_EQ(lines.size(), 1u) << "one line, at exit";
    const std::string printed = "hello from the test guest\n";
    ASSERT_NE(r.out.find(printed), std::string::npos) << r.out;
    EXPECT_EQ(field(lines[0], "uart", "write_count"), static_cast<int64_t>(printed.size()))
        << lines[0];
    EXPECT_EQ(field(lines[0], "uart", "read_count"), 0) << "nothing was typed";
    // The guest ends with one write of 0xfe to the i8042's command port.
    EXPECT_EQ(field(lines[0], "i8042", "reset_count"), 1) << lines[0];
    EXPECT_EQ(field(lines[0], "i8042", "write_count"), 1) << lines[0];
    EXPECT_GE(field(lines[0], "vmm", "device_events"), 1) << lines[0];
}

// SIGPIPE and SIGXFSZ end a process by default. ember counts them and goes on: a snapshot that
// would pass the file size limit (the jailer's `--resource-limit fsize`) fails as a request, and
// the VM runs on.
TEST(MetricsCounts, SignalsAreCountedAndAFileSizeLimitFailsOnlyTheSnapshot) {
    ApiEmber ember;
    auto c = ember.client();
    const std::string metrics = ember.dir.path() + "/metrics.json";
    ASSERT_EQ(call(c, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
    ASSERT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("idle"))).status, 204);
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);

    // One: a second sent while the first is pending would merge with it.
    ASSERT_EQ(::kill(ember.pid, SIGPIPE), 0);
    ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    const rlimit small{64 * 1024, RLIM_INFINITY};
    rlimit before{};
    ASSERT_EQ(::prlimit(ember.pid, RLIMIT_FSIZE, nullptr, &before), 0) << std::strerror(errno);
    ASSERT_EQ(::prlimit(ember.pid, RLIMIT_FSIZE, &small, nullptr), 0) << std::strerror(errno);
    const std::string state = ember.dir.path() + "/vm.state", mem = ember.dir.path() + "/vm.mem";
    expect_fault(call(c, "PUT", "/snapshot/create",
                      R"({"snapshot_type": "Full", "snapshot_path": ")" + state +
                          R"(", "mem_file_path": ")" + mem + "\"}"),
                 "File too large");
    // Nothing half-written is left behind: no pair, no temporary file.
    for (const auto& entry : std::filesystem::directory_iterator(ember.dir.path()))
        EXPECT_EQ(entry.path().filename().string().find("vm."), std::string::npos) << entry.path();
    ASSERT_EQ(::prlimit(ember.pid, RLIMIT_FSIZE, &before, nullptr), 0) << std::strerror(errno);
    EXPECT_EQ(call(c, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204) << ember.log();
    ASSERT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);

    EXPECT_EQ(call(c, "GET", "/").status, 200);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
    // Counters are Firecracker's: each line holds what happened since the one before. A
    // process-directed signal may reach a thread only after the flush, so the line at exit counts.
    auto lines = lines_of(metrics);
    ASSERT_EQ(lines.size(), 2u);
    auto total = [&](const char* name) {
        return field(lines[0], "signals", name) + field(lines[1], "signals", name);
    };
    EXPECT_GE(total("sigxfsz"), 1) << lines[0];
    EXPECT_EQ(total("sigpipe"), 1) << lines[0] << "\n" << lines[1];
    EXPECT_EQ(total("sighup"), 0);
}

TEST(MetricsCounts, SighupEndsEmberAsFirecrackerDoesAndIsCounted) {
    ApiEmber ember;
    auto c = ember.client();
    const std::string metrics = ember.dir.path() + "/metrics.json";
    ASSERT_EQ(call(c, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
    ASSERT_EQ(::kill(ember.pid, SIGHUP), 0);
    EXPECT_EQ(ember.wait(), 0) << ember.log();
    auto lines = lines_of(metrics);
    ASSERT_EQ(lines.size(), 1u) << "metrics are written at exit";
    EXPECT_EQ(field(lines[0], "signals", "sighup"), 1) << lines[0];
}

}  // namespace
}  // namespace ember::testing
