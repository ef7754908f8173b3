// Firecracker's API, replayed against one real ember: the requests a Firecracker client makes over
// a microVM's life, before boot, running, paused and on restore, each with the answer Firecracker
// documents (its swagger, its docs, and the texts its own integration tests match on). Written by
// us from that documented behaviour. Where ember differs on purpose, the step says so and the
// README lists it; every other step is Firecracker's answer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iostream>
#include <thread>

#include "tests/support/ember_process.h"
#include "tests/support/netns.h"
#include "tests/support/uds_http.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

// One request and the answer Firecracker gives: its status and, when not empty, text that the
// answer's body must hold (for a 400, part of its fault_message).
struct Step {
    std::string method, path, body;
    int status;
    std::string says;
    // A header the answer must carry, "" for none.
    std::string header = "";
};

class Replay {
  public:
    explicit Replay(std::vector<std::string> extra = {}) {
        sock_ = dir.path() + "/api.sock";
        log_path = dir.write("log", "");  // Firecracker's logger opens a file, never creates one
        std::vector<std::string> argv = {EMBER_BINARY, "--api-sock", sock_, "--serial-out",
                                         dir.path() + "/console"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        int devnull = ::open("/dev/null", O_RDWR);
        pid = spawn(argv, devnull, devnull, devnull);
        ::close(devnull);
        auto c = UdsHttpClient::connect(sock_);
        EXPECT_TRUE(c) << c.error().message;
        if (c) client_.emplace(std::move(*c));
    }
    ~Replay() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }

    // Sends each step in order; a step whose answer differs fails the test with both answers, and
    // the rest still run, so one run lists every difference.
    void run(const std::vector<Step>& steps) {
        for (const auto& s : steps) {
            ++sent;
            auto r = client_->request(s.method, s.path, s.body);
            if (!r) {
                ADD_FAILURE() << s.method << " " << s.path << ": no answer: " << r.error().message;
                continue;
            }
            const bool status_ok = r->status == s.status;
            const bool says_ok = s.says.empty() || r->body.find(s.says) != std::string::npos;
            const bool header_ok = s.header.empty() || has_header(r->headers, s.header);
            if (status_ok && says_ok && header_ok) {
                ++met;
                continue;
            }
            ADD_FAILURE() << s.method << " " << s.path << " " << s.body
                          << "\n  Firecracker: " << s.status
                          << (s.says.empty() ? "" : " with '" + s.says + "'")
                          << (s.header.empty() ? "" : " and header " + s.header)
                          << "\n  ember:       " << r->status << " " << r->body;
        }
    }

    std::string log() const {
        std::ifstream in(log_path);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    TempDir dir;
    std::string log_path;
    pid_t pid = -1;
    int sent = 0, met = 0;

  private:
    // `headers` is lower-cased already.
    static bool has_header(const std::string& headers, const std::string& name) {
        std::string want;
        for (char ch : name) want += static_cast<char>(std::tolower(ch));
        return headers.find("\n" + want + ":") != std::string::npos;
    }

    std::string sock_;
    std::optional<UdsHttpClient> client_;
};

const std::string kNotBefore =
    "The requested operation is not supported before starting the "
    "microVM.";
const std::string kNotAfter = "The requested operation is not supported after starting the microVM";

std::string guest(const std::string& name) {
    return std::string(EMBER_GUEST_DIR) + "/" + name + ".elf";
}

std::string drive(const std::string& id, const std::string& path, bool root,
                  const std::string& extra = "") {
    return R"({"drive_id": ")" + id + R"(", "path_on_host": ")" + path +
           R"(", "is_root_device": )" + (root ? "true" : "false") + extra + "}";
}

std::string image(TempDir& dir, const std::string& name) {
    return dir.write(name, std::string(1 << 20, '\0'));
}

// test_api.py's configuration and pre-boot checks, in order.
TEST(FirecrackerApi, BeforeStart) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_tap("fctap1"));
    ASSERT_TRUE(create_tap("fctap2"));
    Replay vm;
    const std::string root = image(vm.dir, "root.img"), scratch = image(vm.dir, "scratch.img");
    vm.run({
        {"GET", "/", "", 200, R"("state":"Not started")"},
        {"GET", "/version", "", 200, "firecracker_version"},
        {"GET", "/machine-config", "", 200, R"("vcpu_count":1)"},
        {"GET", "/machine-config", "", 200, R"("mem_size_mib":128)"},
        {"GET", "/machine-config", "", 200, R"("smt":false)"},
        {"PUT", "/logger", R"({"log_path": ")" + vm.dir.path() + R"(/missing.log"})", 400,
         "No such file or directory (os error 2)"},
        {"PUT", "/logger", R"({"log_path": ")" + vm.log_path + R"(", "level": "Info",
          "show_level": true, "show_log_origin": true})",
         204, ""},
        {"PUT", "/logger", R"({"level": "DEBUG"})", 204, ""},
        {"PUT", "/logger", R"({"level": "Info"})", 204, ""},
        {"PUT", "/metrics", R"({"metrics_path": ")" + vm.dir.path() + "/metrics\"}", 204, ""},
        {"PUT", "/metrics", R"({"metrics_path": ")" + vm.dir.path() + "/metrics\"}", 400, ""},
        {"PATCH", "/logger", R"({"level": "Error"})", 400, "Invalid request method"},
        {"PUT", "/machine-config", R"({"mem_size_mib": 128})", 400, "missing field `vcpu_count`"},
        {"PUT", "/machine-config", R"({"vcpu_count": 2})", 400, "missing field `mem_size_mib`"},
        {"PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 128})", 400,
         "The number of vCPUs must be greater than 0, less than 32"},
        {"PUT", "/machine-config", R"({"vcpu_count": 33, "mem_size_mib": 128})", 400,
         "The number of vCPUs must be greater than 0, less than 32"},
        {"PUT", "/machine-config", R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": true})", 400,
         "must be 1 or an even number if SMT is enabled"},
        {"PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 0})", 400,
         "The memory size (MiB) is either 0"},
        {"PATCH", "/machine-config", "{}", 400, ""},
        {"PATCH", "/machine-config", R"({"mem_size_mib": 18446744073709551615})", 400, ""},
        {"PUT", "/machine-config",
         R"({"vcpu_count": 2, "mem_size_mib": 64, "cpu_template": "None"})", 204, "",
         "Deprecation"},
        {"PATCH", "/machine-config", R"({"vcpu_count": 1})", 204, ""},
        {"GET", "/machine-config", "", 200, R"("vcpu_count":1)"},
        {"GET", "/machine-config", "", 200, R"("mem_size_mib":64)"},
        {"PUT", "/boot-source", R"({"kernel_image_path": "foo.bar"})", 400,
         "The kernel file cannot be opened: No such file or directory (os error 2)"},
        {"PUT", "/boot-source", R"({"kernel_image_path": ")" + guest("counter") + "\"}", 204, ""},
        {"PATCH", "/boot-source", R"({"kernel_image_path": "otherfile"})", 400,
         "Invalid request method"},
        {"PUT", "/drives/rootfs", drive("rootfs", "foo.bar", true), 400,
         "No such file or directory"},
        {"PUT", "/drives/rootfs", drive("rootfs", root, true), 204, ""},
        {"PUT", "/drives/scratch", drive("scratch", scratch, false, R"(, "is_read_only": false)"),
         204, ""},
        {"PUT", "/drives/scratch", drive("scratch", scratch, true), 400,
         "A root block device already exists"},
        {"PUT", "/drives/scratch", drive("scratch", scratch, false, R"(, "io_engine": "Fast")"),
         400, "unknown variant `Fast`, expected `Sync` or `Async`"},
        {"PUT", "/drives/vub",
         R"({"drive_id": "vub", "socket": "/x.sock", "is_root_device": false})", 400, "vhost-user"},
        {"PUT", "/drives/other", drive("scratch", scratch, false), 400, ""},
        {"PATCH", "/drives/scratch", R"({"drive_id": "scratch", "path_on_host": "foo.bar"})", 400,
         kNotBefore},
        {"PUT", "/network-interfaces/1",
         R"({"iface_id": "1", "host_dev_name": "fctap1", "guest_mac": "06:00:00:00:00:01"})", 204,
         ""},
        {"PUT", "/network-interfaces/2",
         R"({"iface_id": "2", "host_dev_name": "fctap2", "guest_mac": "07:00:00:00:00:01"})", 204,
         ""},
        {"PUT", "/network-interfaces/2",
         R"({"iface_id": "2", "host_dev_name": "fctap2", "guest_mac": "06:00:00:00:00:01"})", 400,
         "The MAC address is already in use: 06:00:00:00:00:01"},
        {"PUT", "/network-interfaces/2",
         R"({"iface_id": "2", "host_dev_name": "fctap2", "guest_mac": "08:00:00:00:00:01"})", 204,
         ""},
        {"PUT", "/network-interfaces/1",
         R"({"iface_id": "1", "host_dev_name": "fctap2", "guest_mac": "06:00:00:00:00:01"})", 400,
         "Could not create the network device"},
        {"PATCH", "/network-interfaces/1", R"({"iface_id": "1"})", 400, kNotBefore},
        {"PATCH", "/vm", R"({"state": "Paused"})", 400, kNotBefore},
        {"PUT", "/snapshot/create",
         R"({"snapshot_path": "/tmp/x.state", "mem_file_path": "/tmp/x.mem"})", 400, ""},
        {"GET", "/vm/config", "", 200, R"("drive_id":"rootfs")"},
        {"GET", "/vm/config", "", 200, R"("socket":null)"},
        {"GET", "/vm/config", "", 200, R"("cpu-config":null)"},
        {"GET", "/", "{}", 400, "GET request cannot have a body."},
    });
    // test_logging.py: each request is logged, with its body for PUT and PATCH, and a refusal
    // with its status and message.
    const std::string log = vm.log();
    EXPECT_NE(log.find(R"(The API server received a Patch request on "/machine-config" with body)"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(R"(The API server received a Get request on "/machine-config".)"),
              std::string::npos);
    EXPECT_NE(log.find("Received Error. Status code: 400 Bad Request. Message: "),
              std::string::npos);
    std::cout << "[ replay ] before start: " << vm.met << " of " << vm.sent
              << " answers are Firecracker's\n";
}

// test_api.py's post-boot rules, then pause and resume as SDKs drive them.
TEST(FirecrackerApi, RunningAndPaused) {
    ASSERT_TRUE(enter_new_netns());
    ASSERT_TRUE(create_tap("fctap1"));
    Replay vm;
    const std::string scratch = image(vm.dir, "scratch.img"),
                      bigger = vm.dir.write("bigger.img", std::string(2 << 20, '\0'));
    vm.run({
        {"PUT", "/actions", R"({"action_type": "FlushMetrics"})", 400, ""},
        {"PUT", "/metrics", R"({"metrics_path": ")" + vm.dir.path() + "/metrics\"}", 204, ""},
        {"PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 32})", 204, ""},
        {"PUT", "/boot-source", R"({"kernel_image_path": ")" + guest("counter") + "\"}", 204, ""},
        {"PUT", "/drives/scratch", drive("scratch", scratch, false), 204, ""},
        {"PUT", "/network-interfaces/1",
         R"({"iface_id": "1", "host_dev_name": "fctap1", "guest_mac": "06:00:00:00:00:01"})", 204,
         ""},
        {"PUT", "/actions", R"({"action_type": "InstanceStart"})", 204, ""},
        {"GET", "/", "", 200, R"("state":"Running")"},
        {"PUT", "/actions", R"({"action_type": "InstanceStart"})", 400, ""},
        {"PUT", "/boot-source", R"({"kernel_image_path": ")" + guest("counter") + "\"}", 400,
         kNotAfter},
        {"PATCH", "/machine-config", R"({"vcpu_count": 2})", 400, kNotAfter},
        {"PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 128})", 400, kNotAfter},
        {"PUT", "/drives/late", drive("late", scratch, false), 400, kNotAfter},
        {"PUT", "/network-interfaces/2", R"({"iface_id": "2", "host_dev_name": "fctap1"})", 400,
         kNotAfter},
        {"PATCH", "/boot-source", R"({"kernel_image_path": "otherfile"})", 400,
         "Invalid request method"},
        {"PATCH", "/logger", R"({"level": "Error"})", 400, "Invalid request method"},
        {"PATCH", "/drives/scratch",
         R"({"drive_id": "scratch", "path_on_host": "foo.bar", "is_read_only": true})", 400,
         "unknown field `is_read_only`"},
        {"PATCH", "/drives/scratch",
         R"({"drive_id": "scratch", "path_on_host": "foo.bar", "io_engine": "Sync"})", 400,
         "unknown field `io_engine`"},
        {"PATCH", "/drives/scratch",
         R"({"drive_id": "scratch", "path_on_host": "foo.bar", "is_root_device": false})", 400,
         "unknown field `is_root_device`"},
        {"PATCH", "/drives/scratch", R"({"drive_id": "scratch", "path_on_host": "foo.bar"})", 400,
         "Error manipulating the backing file: No such file or directory (os error 2) foo.bar"},
        {"PATCH", "/drives/scratch",
         R"({"drive_id": "scratch", "path_on_host": ")" + bigger + "\"}", 204, ""},
        {"PATCH", "/drives/scratch", R"({"drive_id": "scratch", "rate_limiter": {
            "bandwidth": {"size": 1000000, "refill_time": 100}, "ops": {"size": 1, "refill_time": 100}}})",
         204, ""},
        {"PATCH", "/network-interfaces/1", R"({"iface_id": "1", "rx_rate_limiter": {
            "bandwidth": {"size": 1000000, "refill_time": 100}}})",
         204, ""},
        {"GET", "/vm/config", "", 200, bigger},
        {"PUT", "/snapshot/create",
         R"({"snapshot_path": ")" + vm.dir.path() + R"(/s.state", "mem_file_path": ")" +
             vm.dir.path() + "/s.mem\"}",
         400, ""},
        {"PATCH", "/vm", R"({"state": "Paused"})", 204, ""},
        {"PATCH", "/vm", R"({"state": "Paused"})", 204, ""},
        {"GET", "/", "", 200, R"("state":"Paused")"},
        {"PATCH", "/vm", R"({"state": "Stopped"})", 400, "unknown variant `Stopped`"},
        {"PUT", "/snapshot/create",
         R"({"snapshot_type": "Fast", "snapshot_path": "/tmp/x", "mem_file_path": "/tmp/y"})", 400,
         "unknown variant `Fast`, expected `Full` or `Diff`"},
        {"PUT", "/snapshot/create",
         R"({"snapshot_type": "Diff", "snapshot_path": ")" + vm.dir.path() +
             R"(/d.state", "mem_file_path": ")" + vm.dir.path() + "/d.mem\"}",
         400, ""},
        {"PUT", "/snapshot/create",
         R"({"snapshot_path": ")" + vm.dir.path() + R"(/s.state", "mem_file_path": ")" +
             vm.dir.path() + "/s.mem\"}",
         204, ""},
        {"PATCH", "/vm", R"({"state": "Resumed"})", 204, ""},
        {"PATCH", "/vm", R"({"state": "Resumed"})", 204, ""},
        {"GET", "/", "", 200, R"("state":"Running")"},
        {"PUT", "/actions", R"({"action_type": "FlushMetrics"})", 204, ""},
        {"PUT", "/metrics", R"({"metrics_path": ")" + vm.dir.path() + "/metrics2\"}", 400,
         kNotAfter},
        {"PUT", "/logger", R"({"level": "Debug"})", 400, kNotAfter},
    });
    // test_metrics.py: a flushed line is one JSON object with Firecracker's groups.
    std::ifstream in(vm.dir.path() + "/metrics");
    std::string line;
    std::getline(in, line);
    for (const char* group : {"\"utc_timestamp_ms\":", "\"api_server\":", "\"block\":", "\"net\":",
                              "\"vcpu\":", "\"latencies_us\":", "\"put_api_requests\":",
                              "\"patch_api_requests\":", "\"get_api_requests\":"})
        EXPECT_NE(line.find(group), std::string::npos) << group << " in " << line;
    std::cout << "[ replay ] running and paused: " << vm.met << " of " << vm.sent
              << " answers are Firecracker's\n";
}

// test_snapshot_basic.py's refused loads. Each is a body Firecracker refuses before touching a
// file, and the process serves on.
TEST(FirecrackerApi, RefusedSnapshotLoads) {
    Replay vm;
    vm.run({
        {"PUT", "/snapshot/load",
         R"({"mem_backend": {"backend_type": "File", "backend_path": "/x"}})", 400,
         "missing field `snapshot_path`"},
        {"PUT", "/snapshot/load",
         R"({"snapshot_path": "/x", "mem_backend": {"backend_path": "/y"}})", 400,
         "missing field `backend_type`"},
        {"PUT", "/snapshot/load",
         R"({"snapshot_path": "/x", "mem_backend": {"backend_type": "File"}})", 400,
         "missing field `backend_path`"},
        {"PUT", "/snapshot/load",
         R"({"snapshot_path": "/x", "mem_backend": {"backend_type": "foo", "backend_path": "/y"}})",
         400, "unknown variant `foo`, expected `File` or `Uffd`"},
        {"PUT", "/snapshot/load",
         R"({"snapshot_path": "/x", "mem_file_path": "/y", "mem_backend": {"backend_type": "File",
             "backend_path": "/y"}})",
         400, ""},
        {"GET", "/", "", 200, R"("state":"Not started")"},
    });
    std::cout << "[ replay ] refused loads: " << vm.met << " of " << vm.sent
              << " answers are Firecracker's\n";
}

// A load that fails on its files ends the process after its answer, as Firecracker's clients
// expect; --serve-after-failed-load is ember's choice to keep serving.
TEST(FirecrackerApi, AFailedLoadEndsTheProcessUnlessAskedToServeOn) {
    const std::string load =
        R"({"snapshot_path": "/nonexistent/vm.state", "mem_backend": {"backend_type": "File",
            "backend_path": "/nonexistent/vm.mem"}, "resume_vm": true})";
    {
        Replay vm;
        vm.run({{"PUT", "/snapshot/load", load, 400, "/nonexistent/vm.state"}});
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (::waitpid(vm.pid, &status, WNOHANG) == 0 &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(20ms);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "status " << status;
        vm.pid = -1;
    }
    Replay vm({"--serve-after-failed-load"});
    vm.run({{"PUT", "/snapshot/load", load, 400, "/nonexistent/vm.state"},
            {"GET", "/", "", 200, R"("state":"Not started")"}});
}

}  // namespace
}  // namespace ember::testing
