#include "api/client/store_view.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string_view>
#include <utility>

#include "api/client/spawn.h"
#include "api/json/api_bodies.h"
#include "core/base/unique_fd.h"

namespace ember::client {
namespace {

// What ember-snapshot view prints is a load body and a line or two: more is not its.
constexpr size_t kMaxOutput = 64 << 10;

std::string last_line(std::string_view text) {
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    const size_t at = text.rfind('\n');
    return std::string(at == std::string_view::npos ? text : text.substr(at + 1));
}

// The exit status of ember-snapshot find-view where no view is made.
constexpr int kNoView = 3;

std::vector<std::string> view_argv(const StoreView& v, const char* command) {
    std::vector<std::string> argv = {v.ember_snapshot, command, "--cache", v.cache_dir};
    if (v.cache_bytes != 0)
        argv.insert(argv.end(), {"--cache-bytes", std::to_string(v.cache_bytes)});
    if (!v.manifest_sha256.empty())
        argv.insert(argv.end(), {"--manifest-sha256", v.manifest_sha256});
    argv.push_back(v.manifest_url);
    return argv;
}

// ember-snapshot `command` run to its end within the view's bound; nullopt where find-view found
// none.
Result<std::optional<LoadSnapshot>> run_view(const StoreView& v, const char* command) {
    const std::string what = v.ember_snapshot + " " + command + " " + v.manifest_url;
    std::array<int, 2> out{-1, -1}, err{-1, -1};
    if (::pipe2(out.data(), O_CLOEXEC) != 0) return fail_errno(what + ": a pipe");
    UniqueFd out_read(out[0]), out_write(out[1]);
    if (::pipe2(err.data(), O_CLOEXEC) != 0) return fail_errno(what + ": a pipe");
    UniqueFd err_read(err[0]), err_write(err[1]);
    auto in = open_output("");
    EMBER_TRY(in);
    auto spawned =
        spawn_program(view_argv(v, command), in->get(), out_write.get(), err_write.get());
    EMBER_TRY(spawned, what);
    out_write = UniqueFd();
    err_write = UniqueFd();

    std::array<std::string, 2> got;
    // Its output, then its end (a pidfd, readable once it has ended), all within the bound.
    std::array<pollfd, 3> fds{{{out_read.get(), POLLIN, 0},
                               {err_read.get(), POLLIN, 0},
                               {spawned->pidfd.get(), POLLIN, 0}}};
    const auto deadline = std::chrono::steady_clock::now() + v.timeout;
    bool timed_out = false;
    while (fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready =
            left.count() <= 0 ? 0 : ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (ready == 0) {
            timed_out = true;
            break;
        }
        if (ready < 0) continue;  // interrupted: no revents to read
        if (fds[2].revents != 0) fds[2].fd = -1;
        for (size_t i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            char buffer[4096];
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0 && got[i].size() < kMaxOutput)
                got[i].append(buffer, static_cast<size_t>(n));
            else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                fds[i].fd = -1;
        }
    }
    if (timed_out) ::kill(spawned->pid, SIGKILL);
    int status = -1;
    ::waitpid(spawned->pid, &status, 0);
    if (timed_out)
        return fail(what + ": no answer within " + std::to_string(v.timeout.count()) + " ms");
    if (WIFEXITED(status) && WEXITSTATUS(status) == kNoView && std::string_view(command) != "view")
        return std::nullopt;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(what + " failed" + (got[1].empty() ? "" : ": " + last_line(got[1])));
    auto load = json::parse_body<LoadSnapshot>(got[0]);
    EMBER_TRY(load, what + ": what it printed");
    if (!load->mem_backend || load->uffd()) return fail(what + ": printed no File load");
    load->resume_vm = v.resume_vm;
    return std::optional<LoadSnapshot>(std::move(*load));
}

}  // namespace

Result<LoadSnapshot> view_load(const StoreView& v) {
    auto load = run_view(v, "view");
    EMBER_TRY(load);
    if (!*load) return fail(v.ember_snapshot + " view " + v.manifest_url + ": made no view");
    return std::move(**load);
}

Result<std::optional<LoadSnapshot>> find_view_load(const StoreView& v) {
    return run_view(v, "find-view");
}

Result<ViewMaker> ViewMaker::start(const StoreView& v) {
    const std::string what = v.ember_snapshot + " view " + v.manifest_url;
    UniqueFd err(::memfd_create("ember-snapshot view", MFD_CLOEXEC));
    if (!err.valid()) return fail_errno(what + ": a memfd for its errors");
    auto nowhere = open_output("");
    EMBER_TRY(nowhere);
    auto spawned = spawn_program(view_argv(v, "view"), nowhere->get(), nowhere->get(), err.get());
    EMBER_TRY(spawned, what);
    // Before it starts the threads that fetch and write, which take its priority: the clone that
    // was just restored, and every other, comes first.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(spawned->pid), 19);
    return ViewMaker(spawned->pid, std::move(spawned->pidfd), std::move(err), v.manifest_url,
                     v.timeout);
}

ViewMaker::ViewMaker(pid_t pid, UniqueFd pidfd, UniqueFd err, std::string manifest_url,
                     std::chrono::milliseconds timeout)
    : pid_(pid),
      pidfd_(std::move(pidfd)),
      err_(std::move(err)),
      manifest_url_(std::move(manifest_url)),
      timeout_(timeout),
      deadline_(std::chrono::steady_clock::now() + timeout) {}

ViewMaker::ViewMaker(ViewMaker&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      err_(std::move(other.err_)),
      manifest_url_(std::move(other.manifest_url_)),
      timeout_(other.timeout_),
      deadline_(other.deadline_),
      late_(other.late_),
      status_(other.status_) {}

ViewMaker& ViewMaker::operator=(ViewMaker&& other) noexcept {
    if (this != &other) {
        stop();
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        err_ = std::move(other.err_);
        manifest_url_ = std::move(other.manifest_url_);
        timeout_ = other.timeout_;
        deadline_ = other.deadline_;
        late_ = other.late_;
        status_ = other.status_;
    }
    return *this;
}

ViewMaker::~ViewMaker() {
    stop();
}

void ViewMaker::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

bool ViewMaker::ended() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) {
        if (std::chrono::steady_clock::now() < deadline_) return false;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        late_ = true;
    }
    status_ = status;
    pid_ = -1;
    return true;
}

Result<void> ViewMaker::result() const {
    const std::string what = "ember-snapshot view " + manifest_url_;
    if (pid_ > 0) return fail(what + ": still making it");
    if (late_) return fail(what + ": no end within " + std::to_string(timeout_.count()) + " ms");
    if (WIFEXITED(status_) && WEXITSTATUS(status_) == 0) return {};
    // What it said last: a few lines at most, of our own tool.
    std::string said(4096, '\0');
    const ssize_t n = ::pread(err_.get(), said.data(), said.size(), 0);
    said.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return fail(what + " failed" + (said.empty() ? "" : ": " + last_line(said)));
}

}  // namespace ember::client
