// What the Uffd and huge-page tests share: a page-fault handler process, what it says as it ends,
// and waiting on what a guest or a handler writes to a file.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/api_ember.h"

namespace ember::testing {

// Waits until `done(read_file(path))`; false after kFailsafe.
template <typename Pred>
bool wait_file(const std::string& path, Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done(read_file(path))) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done(read_file(path));
}
inline bool wait_text(const std::string& path, const std::string& text) {
    return wait_file(path, [&](const std::string& s) { return s.find(text) != std::string::npos; });
}
inline bool wait_exists(const std::string& path) {
    return wait_file(path, [&](const std::string&) { return ::access(path.c_str(), F_OK) == 0; });
}

// A page-fault handler process (or another of the store's programs): its stderr and stdout go to
// `name`.err and `name`.out in `dir`.
struct Handler {
    Handler(const TempDir& dir, const std::vector<std::string>& argv,
            const std::string& name = "handler") {
        out = dir.path() + "/" + name + ".out";
        err = dir.path() + "/" + name + ".err";
        int devnull = ::open("/dev/null", O_RDWR);
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid = spawn(argv, devnull, o, e);
        ::close(devnull);
        ::close(o);
        ::close(e);
    }
    ~Handler() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    // The exit status once it ends by itself (kFailsafe at most), or -1.
    int wait() {
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (::waitpid(pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) return -1;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string out, err;
    pid_t pid = -1;
};

// The number ember-uffd's closing line gives before `what`.
inline uint64_t count_before(const std::string& log, const std::string& what) {
    std::smatch m;
    if (!std::regex_search(log, m, std::regex("([0-9]+) " + what))) return 0;
    return std::stoull(m[1]);
}

}  // namespace ember::testing
