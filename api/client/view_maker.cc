#include "api/client/view_maker.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "api/client/spawn.h"

namespace ember::client {
namespace {

// The end of what it said that is read for its error.
constexpr off_t kSaidTail = 4096;

// ioprio_set(2)'s: the best-effort class's lowest level (linux/ioprio.h's helpers do not compile as
// C++ with GCC 12).
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioLowestBestEffort = (2 << 13) | 7;

}  // namespace

Result<ViewMaker> ViewMaker::start(const StoreView& v) {
    const std::string what = v.ember_snapshot + " view " + v.manifest_url;
    UniqueFd err(::memfd_create("ember-snapshot view", MFD_CLOEXEC));
    if (!err.valid()) return fail_errno(what + ": a memfd for its errors");
    auto nowhere = open_output("");
    EMBER_TRY(nowhere);
    auto spawned =
        spawn_program(view_command(v, "view"), nowhere->get(), nowhere->get(), err.get());
    EMBER_TRY(spawned, what);
    // Set before it starts the threads (and the fetcher) that fetch and write, which take them
    // from it: the clone just restored, and every other, comes first.
    const auto pid = static_cast<id_t>(spawned->pid);
    ::setpriority(PRIO_PROCESS, pid, 19);
    ::syscall(SYS_ioprio_set, kIoprioWhoProcess, pid, kIoprioLowestBestEffort);
    return ViewMaker(spawned->pid, std::move(spawned->pidfd), std::move(err), v);
}

ViewMaker::ViewMaker(pid_t pid, UniqueFd pidfd, UniqueFd err, const StoreView& view)
    : pid_(pid),
      pidfd_(std::move(pidfd)),
      err_(std::move(err)),
      manifest_url_(view.manifest_url),
      timeout_(view.timeout),
      deadline_(std::chrono::steady_clock::now() + view.timeout) {}

ViewMaker::ViewMaker(ViewMaker&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      err_(std::move(other.err_)),
      manifest_url_(std::move(other.manifest_url_)),
      timeout_(other.timeout_),
      deadline_(other.deadline_),
      late_(other.late_),
      elsewhere_(other.elsewhere_),
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
        elsewhere_ = other.elsewhere_;
        status_ = other.status_;
    }
    return *this;
}

ViewMaker::~ViewMaker() {
    stop();
}

void ViewMaker::reap() {
    int status = 0;
    // Through the pid once the pidfd says it has ended: a pid that someone else reaped may
    // already be another process's, which the pidfd never is.
    if (::waitpid(pid_, &status, 0) == pid_)
        status_ = status;
    else
        elsewhere_ = true;
    pid_ = -1;
}

void ViewMaker::stop() {
    if (pid_ <= 0) return;
    signal_pidfd(pidfd_.get(), SIGKILL);
    pollfd p{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    reap();
}

bool ViewMaker::ended() {
    if (pid_ <= 0) return true;
    pollfd p{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 0) > 0) {
        reap();
        return true;
    }
    if (std::chrono::steady_clock::now() < deadline_) return false;
    late_ = true;
    stop();
    return true;
}

Result<void> ViewMaker::result() const {
    const std::string what = "ember-snapshot view " + manifest_url_;
    if (pid_ > 0) return fail(what + ": still making it");
    if (late_) return fail(what + ": no end within " + std::to_string(timeout_.count()) + " ms");
    if (elsewhere_) return fail(what + ": ended, reaped by someone else: how is not known");
    if (WIFEXITED(status_) && WEXITSTATUS(status_) == 0) return {};
    // What it said last.
    struct stat st{};
    const off_t size = ::fstat(err_.get(), &st) == 0 ? st.st_size : 0;
    const off_t from = std::max<off_t>(0, size - kSaidTail);
    std::string said(static_cast<size_t>(size - from), '\0');
    const ssize_t n = ::pread(err_.get(), said.data(), said.size(), from);
    said.resize(n > 0 ? static_cast<size_t>(n) : 0);
    const std::string how = WIFEXITED(status_)
                                ? "exited with status " + std::to_string(WEXITSTATUS(status_))
                                : "was killed by signal " + std::to_string(WTERMSIG(status_));
    return fail(what + " " + how + (said.empty() ? "" : ": " + last_line(said)));
}

}  // namespace ember::client
