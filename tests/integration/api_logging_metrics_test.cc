// Where metrics and the log go, and what Firecracker's metrics validator requires of every line,
// against a real ember process.
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

TEST(Api, MetricsAndLoggerGoWhereTheyAreSent) {
    ApiEmber ember;
    auto c = ember.client();
    const std::string metrics = ember.dir.path() + "/metrics.json",
                      log = ember.dir.write("ember.log", "");
    EXPECT_EQ(call(c, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
    EXPECT_EQ(call(c, "PUT", "/logger",
                   R"({"log_path": ")" + log + R"(", "level": "Info", "show_level": true})")
                  .status,
              204);
    EXPECT_EQ(call(c, "GET", "/").status, 200);
    EXPECT_EQ(call(c, "PUT", "/boot-source", R"({"kernel_image_path": "/nonexistent"})").status,
              400);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
    EXPECT_EQ(call(c, "GET", "/").status, 200);
    EXPECT_EQ(call(c, "GET", "/").status, 200);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
    std::ifstream m(metrics);
    std::string first, second;
    ASSERT_TRUE(std::getline(m, first));
    ASSERT_TRUE(std::getline(m, second));
    EXPECT_NE(first.find("\"utc_timestamp_ms\":"), std::string::npos) << first;
    // Firecracker's groups and names, each counter showing what it gained since the last flush.
    EXPECT_NE(first.find("\"get_api_requests\":{\"instance_info_count\":1,"), std::string::npos)
        << first;
    EXPECT_NE(second.find("\"get_api_requests\":{\"instance_info_count\":2,"), std::string::npos)
        << second;
    EXPECT_NE(first.find("\"boot_source_count\":1,\"boot_source_fails\":1"), std::string::npos)
        << first;
    EXPECT_NE(second.find("\"boot_source_count\":0,\"boot_source_fails\":0"), std::string::npos)
        << second;
    EXPECT_NE(first.find("\"metrics_count\":1,\"metrics_fails\":0"), std::string::npos) << first;
    EXPECT_NE(first.find("\"logger_count\":1,\"logger_fails\":0"), std::string::npos) << first;
    // The first flush is counted as it is answered, after its own line was written.
    EXPECT_NE(first.find("\"actions_count\":0,"), std::string::npos) << first;
    EXPECT_NE(second.find("\"actions_count\":1,"), std::string::npos) << second;
    EXPECT_EQ(ember.stop(), 0);
    std::ifstream l(log);
    std::string logged(std::istreambuf_iterator<char>(l), {});
    EXPECT_NE(logged.find("exited: stopped by Terminated"), std::string::npos) << logged;
}

// The logger writes to a regular file or a FIFO that exists: a missing file is Firecracker's error,
// a device such as /dev/kvm would take every later line, and a file of /proc or /sys is the
// kernel's interface (a line written to /proc/sysrq-trigger would be a command). A FIFO nobody
// reads yet is taken, as Firecracker takes it.
TEST(Api, LoggerRefusesAMissingFileADeviceAndTheKernelsFiles) {
    ApiEmber ember;
    auto c = ember.client();
    const std::string fifo = ember.dir.path() + "/log.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    auto logger = [&](const std::string& path) {
        return call(c, "PUT", "/logger", R"({"log_path": ")" + path + "\"}");
    };
    expect_fault(logger(ember.dir.path() + "/missing.log"),
                 "logger.log_path " + ember.dir.path() +
                     "/missing.log: No such file or directory (os error 2)");
    EXPECT_FALSE(std::filesystem::exists(ember.dir.path() + "/missing.log"));
    expect_fault(logger("/dev/kvm"), "logger.log_path /dev/kvm: not a regular file or FIFO");
    expect_fault(logger("/proc/self/mem"),
                 "logger.log_path /proc/self/mem: a file of the kernel's proc interface");
    expect_fault(call(c, "PUT", "/metrics", R"({"metrics_path": "/dev/null"})"),
                 "metrics.metrics_path /dev/null: not a regular file or FIFO");
    expect_fault(call(c, "PUT", "/metrics", R"({"metrics_path": "/sys/class/net/lo/mtu"})"),
                 "metrics.metrics_path /sys/class/net/lo/mtu: a file of the kernel's sysfs");
    expect_fault(call(c, "PUT", "/boot-source", R"({"kernel_image_path": "/proc/self/mem"})"),
                 "a file of the kernel's proc interface");
    expect_fault(call(c, "PUT", "/drives/root",
                      R"({"drive_id": "root", "path_on_host": "/proc/self/environ",)"
                      R"( "is_root_device": true, "is_read_only": true})"),
                 "a file of the kernel's proc interface");
    EXPECT_EQ(logger(fifo).status, 204) << "a FIFO with no reader yet is taken";
    EXPECT_EQ(call(c, "GET", "/").status, 200);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
}

// --log-path to a FIFO nobody reads (yet): taken, as Firecracker takes it, and what the FIFO cannot
// hold is dropped and counted; a reader that comes later gets the lines from then on, and one that
// stops reading holds up no thread.
TEST(Api, ALogFifoNeverBlocksEmber) {
    TempDir dir;
    const std::string fifo = dir.path() + "/log.fifo";
    const std::string metrics = dir.path() + "/metrics.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    ASSERT_EQ(::mkfifo(metrics.c_str(), 0600), 0);
    ApiEmber ember({"--log-path", fifo, "--metrics-path", metrics});
    auto c = ember.client();
    // Two lines a request: far more than the FIFO's 64 KiB holds.
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(call(c, "GET", "/").status, 200) << i;
    EXPECT_EQ(call(c, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 16})").status,
              204);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);

    // The reader comes late: it drains what the FIFO held, then sees the lines that follow.
    UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(reader.valid());
    std::string held;
    char buf[65536];
    for (ssize_t n; (n = ::read(reader.get(), buf, sizeof buf)) > 0;)
        held.append(buf, static_cast<size_t>(n));
    EXPECT_GT(held.size(), 32u * 1024) << "the FIFO was filled while nobody read it";
    EXPECT_EQ(held.find('\n', held.size() - 1), held.size() - 1) << "only whole lines went in";
    EXPECT_EQ(call(c, "GET", "/nowhere/late").status, 400);
    EXPECT_NE(read_until(reader.get(), "/nowhere/late", kFailsafe).find("/nowhere/late"),
              std::string::npos);

    // Both flushes wait in the metrics FIFO, which ember holds open as Firecracker does.
    UniqueFd metrics_reader(::open(metrics.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(metrics_reader.valid());
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
    std::string flushed;
    for (ssize_t n; (n = ::read(metrics_reader.get(), buf, sizeof buf)) > 0;)
        flushed.append(buf, static_cast<size_t>(n));
    uint64_t missed = 0;
    const std::string key = "\"missed_log_count\":";
    for (size_t at = flushed.find(key); at != std::string::npos; at = flushed.find(key, at + 1))
        missed += std::stoull(flushed.substr(at + key.size()));
    EXPECT_GT(missed, 0u) << "dropped lines are counted: " << flushed;
    EXPECT_EQ(ember.stop(), 0);
}

// Firecracker v1.7.0's tests/host_tools/fcmetrics.py (validate_fc_metrics, x86_64): every group
// its metrics validator and dashboards require, with every field each must hold as a number.
const std::vector<std::pair<std::string, std::vector<std::string>>> kFirecrackerMetrics = {
    {"api_server",
     {"process_startup_time_us", "process_startup_time_cpu_us", "sync_response_fails",
      "sync_vmm_send_timeout_count"}},
    {"balloon",
     {"activate_fails", "inflate_count", "stats_updates_count", "stats_update_fails",
      "deflate_count", "event_fails"}},
    {"block",
     {"activate_fails", "cfg_fails", "no_avail_buffer", "event_fails", "execute_fails",
      "invalid_reqs_count", "flush_count", "queue_event_count", "rate_limiter_event_count",
      "update_count", "update_fails", "read_bytes", "write_bytes", "read_count", "write_count",
      "rate_limiter_throttled_events", "io_engine_throttled_events", "remaining_reqs_count"}},
    {"deprecated_api", {"deprecated_http_api_calls", "deprecated_cmd_line_api_calls"}},
    {"get_api_requests",
     {"instance_info_count", "machine_cfg_count", "mmds_count", "vmm_version_count"}},
    {"i8042",
     {"error_count", "missed_read_count", "missed_write_count", "read_count", "reset_count",
      "write_count"}},
    {"latencies_us",
     {"full_create_snapshot", "diff_create_snapshot", "load_snapshot", "pause_vm", "resume_vm",
      "vmm_full_create_snapshot", "vmm_diff_create_snapshot", "vmm_load_snapshot", "vmm_pause_vm",
      "vmm_resume_vm"}},
    {"logger", {"missed_metrics_count", "metrics_fails", "missed_log_count", "log_fails"}},
    {"mmds",
     {"rx_accepted", "rx_accepted_err", "rx_accepted_unusual", "rx_bad_eth", "rx_count", "tx_bytes",
      "tx_count", "tx_errors", "tx_frames", "connections_created", "connections_destroyed"}},
    {"net",
     {"activate_fails",
      "cfg_fails",
      "mac_address_updates",
      "no_rx_avail_buffer",
      "no_tx_avail_buffer",
      "event_fails",
      "rx_queue_event_count",
      "rx_event_rate_limiter_count",
      "rx_partial_writes",
      "rx_rate_limiter_throttled",
      "rx_tap_event_count",
      "rx_bytes_count",
      "rx_packets_count",
      "rx_fails",
      "rx_count",
      "tap_read_fails",
      "tap_write_fails",
      "tx_bytes_count",
      "tx_malformed_frames",
      "tx_fails",
      "tx_count",
      "tx_packets_count",
      "tx_partial_reads",
      "tx_queue_event_count",
      "tx_rate_limiter_event_count",
      "tx_rate_limiter_throttled",
      "tx_spoofed_mac_count",
      "tx_remaining_reqs_count"}},
    {"patch_api_requests",
     {"drive_count", "drive_fails", "network_count", "network_fails", "machine_cfg_count",
      "machine_cfg_fails", "mmds_count", "mmds_fails"}},
    {"put_api_requests",
     {"actions_count",     "actions_fails",     "boot_source_count", "boot_source_fails",
      "drive_count",       "drive_fails",       "logger_count",      "logger_fails",
      "machine_cfg_count", "machine_cfg_fails", "cpu_cfg_count",     "cpu_cfg_fails",
      "metrics_count",     "metrics_fails",     "network_count",     "network_fails",
      "mmds_count",        "mmds_fails",        "vsock_count",       "vsock_fails"}},
    {"seccomp", {"num_faults"}},
    {"vcpu", {"exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures"}},
    {"vmm", {"device_events", "panic_count"}},
    {"uart",
     {"error_count", "flush_count", "missed_read_count", "missed_write_count", "read_count",
      "write_count"}},
    {"signals", {"sigbus", "sigsegv", "sigxfsz", "sigxcpu", "sigpipe", "sighup", "sigill"}},
    {"vsock",
     {"activate_fails",       "cfg_fails",         "rx_queue_event_fails", "tx_queue_event_fails",
      "ev_queue_event_fails", "muxer_event_fails", "conn_event_fails",     "rx_queue_event_count",
      "tx_queue_event_count", "rx_bytes_count",    "tx_bytes_count",       "rx_packets_count",
      "tx_packets_count",     "conns_added",       "conns_killed",         "conns_removed",
      "killq_resync",         "tx_flush_fails",    "tx_write_fails",       "rx_read_fails"}},
    {"entropy",
     {"activate_fails", "entropy_event_fails", "entropy_event_count", "entropy_bytes",
      "host_rng_fails", "entropy_rate_limiter_throttled", "rate_limiter_event_count"}},
};

// What Firecracker's validator would reject in a metrics line, one problem per line; "" if none.
std::string firecracker_metrics_problems(const std::string& line) {
    simdjson::dom::parser parser;
    simdjson::dom::object root;
    if (parser.parse(line).get_object().get(root)) return "not a JSON object: " + line;
    std::string problems;
    uint64_t ts;
    if (root["utc_timestamp_ms"].get_uint64().get(ts)) problems += "no utc_timestamp_ms\n";
    for (const auto& [group, fields] : kFirecrackerMetrics) {
        simdjson::dom::object g;
        if (root[group].get_object().get(g)) {
            problems += "no group " + group + "\n";
            continue;
        }
        for (const auto& f : fields) {
            simdjson::dom::element v;
            if (g[f].get(v) || !v.is_number()) problems += "no number " + group + "." + f + "\n";
        }
    }
    return problems;
}

// Before boot, booted with a drive, and at exit: the line always holds all of Firecracker's groups
// and fields, a device ember lacks (balloon, vsock, mmds, entropy) as zeros.
TEST(Api, MetricsCarryEveryGroupAndFieldFirecrackersValidatorRequires) {
    ApiEmber ember;
    auto c = ember.client();
    const std::string metrics = ember.dir.path() + "/metrics.json";
    const std::string disk = ember.dir.write("disk.img", std::string(1 << 20, '\0'));
    EXPECT_EQ(call(c, "PUT", "/metrics", R"({"metrics_path": ")" + metrics + "\"}").status, 204);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
    EXPECT_EQ(call(c, "PUT", "/boot-source", boot_source(guest("counter"))).status, 204);
    EXPECT_EQ(call(c, "PUT", "/drives/scratch",
                   R"({"drive_id": "scratch", "path_on_host": ")" + disk +
                       R"(", "is_root_device": false})")
                  .status,
              204);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
    EXPECT_EQ(call(c, "PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
    EXPECT_EQ(ember.stop(), 0) << ember.log();
    std::ifstream m(metrics);
    std::vector<std::string> lines;
    for (std::string line; std::getline(m, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), 3u) << "one line per flush and one at exit";
    for (const auto& line : lines) EXPECT_EQ(firecracker_metrics_problems(line), "") << line;
    // A drive's own group has the aggregate's fields.
    simdjson::dom::parser parser;
    simdjson::dom::object drive;
    ASSERT_FALSE(parser.parse(lines[1])["block_scratch"].get_object().get(drive)) << lines[1];
    for (const auto& f : kFirecrackerMetrics[2].second)
        EXPECT_FALSE(drive[f].error()) << "block_scratch." << f;
}

}  // namespace
}  // namespace ember::testing
