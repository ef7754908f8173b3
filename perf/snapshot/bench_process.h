// What the snapshot benchmarks share: processes (ember, its page-fault handler) whose console they
// read, the toucher guest (tests/guest/toucher.c) they boot, and the page cache they drop. Needs
// EMBER_BINARY and EMBER_GUEST_DIR defined.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/ember_api.h"
#include "tests/support/ember_process.h"

namespace ember::perf {

using Clock = std::chrono::steady_clock;
using testing::EmberApi;

inline double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A process ended with SIGKILL, which leaves its API socket file behind: ember refuses to start
// at an existing path, so the file goes with the process.
struct Proc {
    pid_t pid = -1;
    int out = -1;
    std::string sock;
    std::string err;  // its stderr's file, when it has one
    ~Proc() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (out >= 0) ::close(out);
        if (!sock.empty()) ::unlink(sock.c_str());
    }
};

// Starts `argv` as `p`, its stdout on p.out and its stderr in the file `err` (discarded without
// one).
inline void start(Proc& p, const std::vector<std::string>& argv, const std::string& err = "") {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    int devnull = ::open("/dev/null", O_RDWR);
    int err_fd = err.empty() ? devnull : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    p.pid = testing::spawn(argv, devnull, fds[1], err_fd < 0 ? devnull : err_fd);
    if (err_fd >= 0) p.err = err;
    if (err_fd >= 0 && err_fd != devnull) ::close(err_fd);
    ::close(devnull);
    ::close(fds[1]);
    p.out = fds[0];
}

// The last line of a process's stderr file: why it exited, when it did.
inline std::string last_line_of(const std::string& path) {
    std::string text = testing::read_file(path);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const auto newline = text.find_last_of('\n');
    return newline == std::string::npos ? text : text.substr(newline + 1);
}

// An ember serving its API at `sock`, its console on p.out, its errors in a file beside `sock`.
inline void start_ember(Proc& p, const std::string& sock) {
    p.sock = sock;
    start(p, {EMBER_BINARY, "--api-sock", sock, "--level", "Error"}, sock + ".err");
}

// A wait's bound only ends a hang. Emulated (tests/nested/run), a QEMU peer's start from cold
// files took up to 4.4 s, and a 30 s wait for the toucher's ~1 s pass once ran out in CI.
constexpr int kHangMs = 120000;

// Reads p's console until `c` shows up (draining whatever else). When it does not, says on stderr
// why not: the console closed (with how the process ended) or kHangMs passed, with the console's
// last bytes and the last line of the process's stderr.
inline bool wait_char(Proc& p, char c) {
    std::string why = "no '" + std::string(1, c) + "' within " + std::to_string(kHangMs) + " ms";
    std::string tail;
    for (auto t = Clock::now(); ms_since(t) < kHangMs;) {
        pollfd pfd{p.out, POLLIN, 0};
        if (::poll(&pfd, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(p.out, buf, sizeof buf);
        if (n > 0 && std::memchr(buf, c, static_cast<size_t>(n))) return true;
        if (n > 0) {
            tail.append(buf, static_cast<size_t>(n));
            if (tail.size() > 32) tail.erase(0, tail.size() - 32);
            continue;
        }
        why = "its console closed";
        const auto status = testing::wait_for_end(p.pid, std::chrono::milliseconds(kHangMs));
        p.pid = -1;  // reaped, and killed first if it had not ended
        if (!status)
            why += ", and the process had not ended " + std::to_string(kHangMs) + " ms later";
        else
            why += WIFSIGNALED(*status) ? ", killed by signal " + std::to_string(WTERMSIG(*status))
                                        : ", exit status " + std::to_string(WEXITSTATUS(*status));
        break;
    }
    std::string shown;
    for (unsigned char ch : tail) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", ch);
        shown += std::isprint(ch) ? std::string(1, static_cast<char>(ch)) : std::string(hex);
    }
    const std::string last = p.err.empty() ? "" : last_line_of(p.err);
    std::fprintf(stderr, "%s; its console's last bytes: \"%s\"%s%s\n", why.c_str(), shown.c_str(),
                 last.empty() ? "" : "; its stderr: ", last.c_str());
    return false;
}

// One API call that must answer 204; false, with the call and its answer on stderr, otherwise.
inline bool call(EmberApi& c, const std::string& method, const std::string& path,
                 const std::string& body) {
    auto r = c.request(method, path, body);
    if (r && r->status == 204) return true;
    std::fprintf(
        stderr, "%s %s: %s\n", method.c_str(), path.c_str(),
        r ? (std::to_string(r->status) + " " + r->body).c_str() : r.error().message.c_str());
    return false;
}

// Boots the toucher (tests/guest/toucher.c) in `ember`, whose API `c` is, with `machine_config`:
// the ms from InstanceStart to the end of its fill of 64 MiB ('R'), or nothing (said on stderr)
// when a call failed or the fill never ended.
inline std::optional<double> boot_toucher(EmberApi& c, Proc& ember,
                                          const std::string& machine_config) {
    if (!call(c, "PUT", "/machine-config", machine_config) ||
        !call(c, "PUT", "/boot-source",
              "{\"kernel_image_path\": \"" + std::string(EMBER_GUEST_DIR) + "/toucher.elf\"}"))
        return std::nullopt;
    auto t = Clock::now();
    if (!call(c, "PUT", "/actions", R"({"action_type": "InstanceStart"})")) return std::nullopt;
    if (!wait_char(ember, 'R')) return std::fprintf(stderr, "toucher never filled\n"), std::nullopt;
    return ms_since(t);
}

// The bytes of the pages a working set file lists (its header's written and read page counts,
// snapshot/working_set.h), or -1.
inline long long working_set_bytes(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return -1;
    uint64_t header[7] = {};
    const bool whole = std::fread(header, sizeof header, 1, f) == 1;
    std::fclose(f);
    return whole ? static_cast<long long>((header[5] + header[6]) * 4096) : -1;
}

inline void drop_page_cache() {
    ::sync();
    std::FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
    if (f) std::fputs("3", f), std::fclose(f);
}

}  // namespace ember::perf
