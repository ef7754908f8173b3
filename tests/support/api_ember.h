// An ember serving its API in a temporary directory, and the calls the API tests make on it.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/ember_api.h"
#include "tests/support/ember_process.h"
#include "tests/support/uds_http.h"

namespace ember::testing {

inline std::string guest(const std::string& name) {
    return std::string(EMBER_GUEST_DIR) + "/" + name + ".elf";
}

// An ember serving its API in a temporary directory, stopped with SIGTERM at the end.
// `before_start` runs with the socket's path before ember does.
class ApiEmber {
  public:
    explicit ApiEmber(std::vector<std::string> extra = {},
                      const std::function<void(const std::string&)>& before_start = {}) {
        sock = dir.path() + "/api.sock";
        if (before_start) before_start(sock);
        std::vector<std::string> argv = {EMBER_BINARY, "--api-sock", sock, "--serial-out",
                                         dir.path() + "/console"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        err_path = dir.path() + "/stderr";
        int devnull = ::open("/dev/null", O_RDWR);
        int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid = spawn(argv, devnull, devnull, err);
        ::close(devnull);
        ::close(err);
    }
    ~ApiEmber() {
        if (pid > 0) stop();
    }
    // A connection, tried until ember answers; if ember has ended, at once. A failure ends the
    // test (gtest reports the exception): there is no client to hand back.
    UdsHttpClient client() {
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        for (;;) {
            auto c = UdsHttpClient::connect(sock, 100);
            if (c) return std::move(*c);
            const bool gone = ended();
            if (gone || std::chrono::steady_clock::now() >= deadline) {
                const std::string all = log();
                throw std::runtime_error(c.error().message + (gone ? " (ember has ended)" : "") +
                                         "\nember's log ends:\n" +
                                         all.substr(all.size() > 4000 ? all.size() - 4000 : 0));
            }
        }
    }
    // The API through ember's client library, for tests that drive a VM rather than test the
    // server's HTTP: once ember answers (its start is waited for as client() waits).
    EmberApi api() {
        (void)client();
        auto a = EmberApi::connect(sock);
        if (!a) throw std::runtime_error(a.error().message);
        return std::move(*a);
    }
    // Whether ember has ended, without reaping it: stop() and wait() still see its status.
    bool ended() const {
        siginfo_t info{};
        return pid > 0 &&
               ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
               info.si_pid == pid;
    }
    // SIGTERM and wait; the exit code.
    int stop() {
        ::kill(pid, SIGTERM);
        return wait();
    }
    int wait() {
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (::waitpid(pid, &status, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (::waitpid(pid, &status, WNOHANG) == 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
        }
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string log() const { return read_file(err_path); }

    TempDir dir;
    std::string sock, err_path;
    pid_t pid = -1;
};

// Sends `pid` (an ember the test spawned) SIGTERM and expects it to end with status 0 within the
// failsafe; says how long it took.
inline void expect_sigterm_ends_cleanly(pid_t pid) {
    const auto term = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    const std::optional<int> status = wait_for_end(pid, kFailsafe);
    ASSERT_TRUE(status) << "SIGTERM did not end ember";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    std::cout << "[ sigterm ] ember ended "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - term)
                     .count()
              << " ms after SIGTERM\n";
}

// One request on a raw connection (UdsHttpClient) or through ember's client (EmberApi); a call
// that got no answer fails the test and gives an empty reply.
template <typename Api>
HttpReply call(Api& c, const std::string& method, const std::string& path,
               const std::string& body = "") {
    auto r = c.request(method, path, body);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
}

inline void expect_fault(const HttpReply& r, const std::string& needle) {
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("\"fault_message\":"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(needle), std::string::npos)
        << "expected '" << needle << "' in " << r.body;
}

inline std::string boot_source(const std::string& kernel) {
    return R"({"kernel_image_path": ")" + kernel + "\"}";
}

}  // namespace ember::testing
