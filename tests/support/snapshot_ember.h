// What the snapshot tests share: an ember process on a socket in a directory of its own, the
// test guests it boots, and a fixture that snapshots a ticking guest and builds load bodies.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/ember_api.h"
#include "tests/support/ember_process.h"

namespace ember::testing {

using namespace std::chrono_literals;

struct Ember {
    // In `cwd`, when given, where relative paths in its configuration resolve.
    explicit Ember(const std::vector<std::string>& extra = {}, const std::string& cwd = "") {
        sock = dir.path() + "/api.sock";
        console = dir.path() + "/console";
        int devnull = ::open("/dev/null", O_RDWR);
        std::vector<std::string> argv = {EMBER_BINARY, "--api-sock", sock,   "--serial-out",
                                         console,      "--level",    "Error"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        pid = spawn(argv, devnull, devnull, devnull, cwd);
        ::close(devnull);
        auto a = EmberApi::connect(sock);
        EXPECT_TRUE(a) << a.error().message;
        if (a) api.emplace(std::move(*a));
    }
    ~Ember() { kill(SIGKILL); }
    void kill(int sig) {
        if (pid <= 0) return;
        ::kill(pid, sig);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
    HttpReply call(const std::string& method, const std::string& path,
                   const std::string& body = "") {
        if (!api) return {};
        auto r = api->request(method, path, body);
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : HttpReply{};
    }
    std::string output() const { return read_file(console); }
    // Waits until the console output satisfies `done`; false after kFailsafe.
    template <typename Pred>
    bool wait_until(Pred done) const {
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (std::chrono::steady_clock::now() < deadline) {
            if (done(output())) return true;
            std::this_thread::sleep_for(100ms);
        }
        return done(output());
    }
    bool wait_for(const std::string& needle) const {
        return wait_until(
            [&](const std::string& out) { return out.find(needle) != std::string::npos; });
    }
    TempDir dir;
    std::string sock, console;
    pid_t pid = -1;
    std::optional<EmberApi> api;  // through ember's client library
};

// Whether what one process printed before a snapshot and another after restoring it read as one
// stream: "<prefix>1 ok", "<prefix>2 ok", ... with no line missing, repeated or changed, where
// the last line may be unfinished. A pause can land in the middle of a line (the UART takes a
// byte per exit), so the restored guest may finish a line the first process began.
inline ::testing::AssertionResult one_unbroken_stream(const std::string& before,
                                                      const std::string& after,
                                                      const std::string& prefix) {
    std::string joined = before + after;
    size_t start = 0;
    int n = 0;
    for (size_t end; (end = joined.find('\n', start)) != std::string::npos; start = end + 1) {
        std::string line = joined.substr(start, end - start);
        if (line != prefix + std::to_string(++n) + " ok")
            return ::testing::AssertionFailure()
                   << "line " << n << " is '" << line << "'\n--- before the snapshot:\n"
                   << before << "\n--- after the restore:\n"
                   << after;
    }
    return ::testing::AssertionSuccess() << n << " lines";
}

// Complete lines in `out`.
inline int lines_in(const std::string& out) {
    return static_cast<int>(std::count(out.begin(), out.end(), '\n'));
}

// Sizes a one-vCPU, 32 MiB microVM and points it at a test guest: what every test here boots.
inline ::testing::AssertionResult configure(Ember& e, const std::string& guest,
                                            bool track_dirty_pages = false) {
    auto machine = e.call("PUT", "/machine-config",
                          std::string(R"({"vcpu_count": 1, "mem_size_mib": 32)") +
                              (track_dirty_pages ? R"(, "track_dirty_pages": true})" : "}"));
    if (machine.status != 204)
        return ::testing::AssertionFailure()
               << "PUT /machine-config: " << machine.status << " " << machine.body;
    auto boot =
        e.call("PUT", "/boot-source",
               R"({"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) + "/" + guest + "\"}");
    if (boot.status != 204)
        return ::testing::AssertionFailure()
               << "PUT /boot-source: " << boot.status << " " << boot.body;
    return ::testing::AssertionSuccess();
}

// Gives the guest `disk` as its drive "data", read-write.
inline ::testing::AssertionResult attach_disk(Ember& e, const std::string& disk) {
    auto r = e.call(
        "PUT", "/drives/data",
        R"({"drive_id": "data", "path_on_host": ")" + disk + R"(", "is_root_device": false})");
    if (r.status != 204)
        return ::testing::AssertionFailure() << "PUT /drives/data: " << r.status << " " << r.body;
    return ::testing::AssertionSuccess();
}

class Snapshot : public ::testing::Test {
  protected:
    // Boots the ticker, lets it tick, pauses it and snapshots it; returns what it printed, all
    // of which is on the console once the pause is answered.
    std::string snapshot_a_ticking_guest() {
        Ember a;
        EXPECT_TRUE(configure(a, "ticker.elf"));
        EXPECT_EQ(a.call("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
        EXPECT_TRUE(a.wait_for("tick 3 ok")) << a.output();
        auto early = a.call("PUT", "/snapshot/create", create_body());
        EXPECT_EQ(early.status, 400);
        EXPECT_NE(early.body.find("must be paused"), std::string::npos) << early.body;
        EXPECT_EQ(a.call("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
        std::string printed = a.output();
        auto created = a.call("PUT", "/snapshot/create", create_body());
        EXPECT_EQ(created.status, 204) << created.body;
        a.kill(SIGKILL);  // the original is gone: nothing is shared but the files
        EXPECT_EQ(a.output(), printed) << "nothing is printed while paused";
        return printed;
    }
    std::string create_body() const {
        return R"({"snapshot_type": "Full", "snapshot_path": ")" + state +
               R"(", "mem_file_path": ")" + mem + "\"}";
    }
    std::string load_body(bool resume, const std::string& state_path,
                          const std::string& mem_path) const {
        return R"({"snapshot_path": ")" + state_path +
               R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem_path +
               R"("}, "resume_vm": )" + (resume ? "true" : "false") + "}";
    }

    TempDir files;
    std::string state = files.path() + "/vm.state", mem = files.path() + "/vm.mem";
};

}  // namespace ember::testing
