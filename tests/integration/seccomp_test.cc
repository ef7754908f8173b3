// ember's threads under their seccomp filters, in a real process running a test guest: each
// thread kind has its own filter once the VM runs, booted from a config file or loaded through the
// API (the VMM thread's once it has handed the API the load's outcome, whether or not the answer
// reaches the client),
// --no-seccomp installs none, and a call a thread's filter lacks ends the process with 148 and a
// line naming the thread.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/snapshot_ember.h"
#include "tests/support/uds_http.h"

namespace ember::testing {
namespace {

namespace fs = std::filesystem;

std::string field(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 2);
    return "";
}

// Each of `pid`'s threads by name, with its "Seccomp" and "Seccomp_filters" lines.
std::multimap<std::string, std::string> thread_seccomp(pid_t pid) {
    std::multimap<std::string, std::string> out;
    for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        const std::string status = read_file(t.path().string() + "/status");
        out.emplace(field(status, "Name"),
                    field(status, "Seccomp") + "/" + field(status, "Seccomp_filters"));
    }
    return out;
}

// ember with the counter guest from --config-file and the API, until stopped.
class RunningEmber {
  public:
    explicit RunningEmber(std::vector<std::string> extra) {
        sock = dir.path() + "/api.sock";
        auto config =
            dir.write("vm.json", guest_config(std::string(EMBER_GUEST_DIR) + "/counter.elf"));
        std::vector<std::string> argv = {EMBER_BINARY,           "--api-sock", sock,
                                         "--config-file",        config,       "--serial-out",
                                         dir.path() + "/console"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        err_path = dir.path() + "/stderr";
        int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        pid = spawn(argv, devnull, devnull, err);
        ::close(devnull);
        ::close(err);
    }
    ~RunningEmber() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    // The exit code, or -1 if a signal ended it.
    int wait() {
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string log() const { return read_file(err_path); }
    std::multimap<std::string, std::string> thread_seccomp() const {
        return testing::thread_seccomp(pid);
    }

    TempDir dir;
    std::string sock, err_path;
    pid_t pid = -1;
};

// ember's own filters with the rules of `kind` whose line holds `needle` taken out.
std::string filters_without(const std::string& kind, const std::string& needle) {
    auto printed = run_process({EMBER_BINARY, "--print-seccomp-filter"}, kFailsafe);
    EXPECT_EQ(printed.exit_code, 0);
    std::istringstream in(printed.out);
    std::vector<std::string> lines;
    std::string line, section;
    while (std::getline(in, line)) {
        if (line.rfind("  \"", 0) == 0) section = line.substr(3, line.find('"', 3) - 3);
        if (section == kind && line.find(needle) != std::string::npos) continue;
        // The rule before a closing bracket loses its comma.
        if (line.find_first_not_of(' ') != std::string::npos &&
            line[line.find_first_not_of(' ')] == ']' && !lines.empty() && !lines.back().empty() &&
            lines.back().back() == ',')
            lines.back().pop_back();
        lines.push_back(line);
    }
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

TEST(Seccomp, EachThreadRunsUnderItsOwnFilterOnceTheVmRuns) {
    RunningEmber ember({});
    auto client = UdsHttpClient::connect(ember.sock);
    ASSERT_TRUE(client) << client.error().message << ember.log();
    auto reply = client->request("GET", "/");
    ASSERT_TRUE(reply);
    EXPECT_NE(reply->body.find("Running"), std::string::npos) << reply->body;
    // A vCPU thread names and confines itself as it starts, and the VMM thread once the API
    // serves (a GET is answered without it): either may be just after the VM is reported running.
    auto threads = ember.thread_seccomp();
    auto confined = [&](const std::string& name) {
        auto it = threads.find(name);
        return it != threads.end() && it->second == "2/1";
    };
    auto vcpu_ready = [&] {
        return confined("fc_vcpu 0") && confined("ember") && confined("ember_signals");
    };
    for (int i = 0; i < 100 && !vcpu_ready(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        threads = ember.thread_seccomp();
    }
    int main_threads = 0, api = 0, vcpu = 0, signals = 0;
    for (const auto& [name, mode] : threads) {
        // Mode 2 (filter), and one filter each: the API thread starts before the VMM thread is
        // confined, and vCPU threads and the termination signals' thread confine themselves.
        EXPECT_EQ(mode, "2/1") << name;
        main_threads += name == "ember";
        api += name == "ember_api";
        signals += name == "ember_signals";
        // Firecracker's name, which Kata's driver matches on (by its prefix "fc_vcpu").
        vcpu += name == "fc_vcpu 0";
    }
    EXPECT_EQ(main_threads, 1);
    EXPECT_EQ(signals, 1);
    EXPECT_GE(api, 1);
    EXPECT_EQ(vcpu, 1);
}

// A snapshot of the ticker guest (snapshot_ember.h), for clones to load.
class LoadedEmber : public Snapshot {
  protected:
    void SetUp() override { snapshot_a_ticking_guest(); }
    std::string load() const { return load_body(true, state, mem); }
    // Waits until `done()` while `e` runs; false after kFailsafe or once it has ended.
    template <typename Pred>
    static bool while_running(const ApiEmber& e, Pred done) {
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline || e.ended()) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }
    // The guest in `e` runs and its VMM thread ("ember") is under its filter.
    static bool vmm_thread_confined(const ApiEmber& e) {
        return while_running(e, [&] {
            auto threads = thread_seccomp(e.pid);
            auto it = threads.find("ember");
            return it != threads.end() && it->second == "2/1" && threads.count("fc_vcpu 0") == 1;
        });
    }
    static bool clone_ready(const ApiEmber& e) {
        return while_running(
            e, [&] { return e.log().find("a KVM VM is ready") != std::string::npos; });
    }
};

// The VMM thread's filter goes on once it has handed over the load's outcome.
TEST_F(LoadedEmber, ALoadThroughTheApiPutsEachThreadUnderItsFilter) {
    ApiEmber clone;
    auto c = clone.api();
    ASSERT_EQ(call(c, "PUT", "/snapshot/load", load()).status, 204) << clone.log();
    ASSERT_TRUE(vmm_thread_confined(clone)) << clone.log();
    for (const auto& [name, mode] : thread_seccomp(clone.pid)) EXPECT_EQ(mode, "2/1") << name;
}

// A client that leaves before its answer cannot keep the VMM thread unconfined: the answer is
// never written, and the VMM thread installs its filter all the same.
TEST_F(LoadedEmber, AClientGoneBeforeTheLoadsAnswerLeavesNoThreadUnconfined) {
    ApiEmber clone;
    // Ready: the VM made ahead has its platform, and no timer of the time before the load is
    // left to do what the load's end must do.
    ASSERT_TRUE(clone_ready(clone)) << clone.log();
    {
        auto client = clone.client();
        const std::string body = load();
        ASSERT_TRUE(
            client.send_raw("PUT /snapshot/load HTTP/1.1\r\nHost: localhost\r\n"
                            "Content-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body));
    }  // gone before the load, which takes far longer than this, is answered
    ASSERT_TRUE(vmm_thread_confined(clone)) << clone.log();
    for (const auto& [name, mode] : thread_seccomp(clone.pid)) EXPECT_EQ(mode, "2/1") << name;
}

TEST(Seccomp, NoSeccompInstallsNoFilter) {
    RunningEmber ember({"--no-seccomp"});
    auto client = UdsHttpClient::connect(ember.sock);
    ASSERT_TRUE(client) << client.error().message << ember.log();
    ASSERT_TRUE(client->request("GET", "/"));
    for (const auto& [name, mode] : ember.thread_seccomp()) EXPECT_EQ(mode, "0/0") << name;
}

struct Forbidden {
    const char* kind;
    const char* rule;  // what marks the rule's line in the printed filters
    long syscall;
};

class SeccompKills : public ::testing::TestWithParam<Forbidden> {};

TEST_P(SeccompKills, ACallTheThreadsFilterLacksEndsEmberWith148) {
    const Forbidden f = GetParam();
    TempDir dir;
    auto filter = dir.write("filter.json", filters_without(f.kind, f.rule));
    RunningEmber ember({"--seccomp-filter", filter});
    // The API thread meets its forbidden call when someone connects.
    if (std::string(f.kind) == "api") (void)UdsHttpClient::connect(ember.sock);
    EXPECT_EQ(ember.wait(), 148) << ember.log();
    // The VMM thread removed the socket file on the way out, whichever thread died, so the next
    // ember at that path is not refused.
    EXPECT_FALSE(std::filesystem::exists(ember.sock)) << ember.log();
    EXPECT_NE(ember.log().find(":ERROR] the " + std::string(f.kind) + " thread made system call " +
                               std::to_string(f.syscall) + ", which its seccomp filter forbids"),
              std::string::npos)
        << ember.log();
}

INSTANTIATE_TEST_SUITE_P(
    EachThreadKind, SeccompKills,
    ::testing::Values(Forbidden{"vcpu", "\"val\": 44672", SYS_ioctl},
                      Forbidden{"vmm", "\"syscall\": \"epoll_wait\"", SYS_epoll_wait},
                      Forbidden{"api", "\"syscall\": \"accept4\"", SYS_accept4}),
    [](const auto& info) { return std::string(info.param.kind); });

}  // namespace
}  // namespace ember::testing
