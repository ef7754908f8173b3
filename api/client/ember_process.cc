#include "api/client/ember_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <utility>

#include "api/client/spawn.h"
#include "core/base/folder_watch.h"

namespace ember::client {
namespace {

using Clock = std::chrono::steady_clock;

// The status of a process someone else reaped (a SIGCHLD handler's waitpid(-1)): it has ended,
// how is not known.
constexpr int kReapedElsewhere = -1;

// The descriptor ember's --ready-fd names: the first after stdio.
constexpr int kReadyFd = 3;

// The longest wait between tries to connect to ember's socket; ember linking the socket into
// place ends a wait at once (FolderWatch).
constexpr std::chrono::milliseconds kConnectRetry{2};

Result<void> check_socket_path(const std::string& path) {
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        return fail(path + ": longer than a Unix socket's path may be (" +
                    std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
    return {};
}

// A connection to the socket at `path`, made without waiting: a server whose backlog is full (a
// hung one) is an error, not a wait.
Result<UniqueFd> connect_to(const std::string& path) {
    EMBER_TRY(check_socket_path(path));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) return fail_errno("socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return fail_errno(path);
    return fd;
}

// The pid of the process serving the socket at `path`.
Result<pid_t> server_pid(const std::string& path) {
    auto fd = connect_to(path);
    EMBER_TRY(fd);
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(fd->get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0)
        return fail_errno(path + ": SO_PEERCRED");
    return peer.pid;
}

// The socket file's identity, so that a socket is removed only while it is still the one seen.
std::optional<std::pair<dev_t, ino_t>> identity(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return std::pair{st.st_dev, st.st_ino};
}

int poll_ms(std::chrono::milliseconds timeout) {
    return static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, INT32_MAX));
}

std::string describe_status(int status) {
    if (status == kReapedElsewhere) return "ended (reaped by someone else)";
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
    return "ended (wait status " + std::to_string(status) + ")";
}

// The last lines of ember's log, for an error that says why it did not start.
std::string log_tail(const std::string& path) {
    if (path.empty()) return "";
    constexpr off_t kTail = 2000;
    // Not a FIFO's reader nor a terminal: only a regular file has a tail to read.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st{};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
    const off_t size = st.st_size;
    const off_t from = size > kTail ? size - kTail : 0;
    std::string tail(static_cast<size_t>(size - from), '\0');
    const ssize_t n = ::pread(fd.get(), tail.data(), tail.size(), from);
    tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return tail.empty() ? "" : "; its log ends:\n" + tail;
}

}  // namespace

Result<EmberProcess> EmberProcess::start(ProcessOptions o) {
    std::vector<std::string> argv;
    std::string jail_root;
    std::string host_socket = o.socket_path;
    if (o.jail) {
        const JailOptions& j = *o.jail;
        // Both make the jailer fork and exit, so the pid this object watches would not be ember's.
        for (const auto& a : j.args)
            if (a == "--daemonize" || a == "--new-pid-ns")
                return fail("ember-jailer " + a +
                            ": an EmberProcess watches ember by its pid, "
                            "which the jailer would not be");
        argv = {j.jailer,
                "--id",
                j.id,
                "--exec-file",
                o.ember,
                "--uid",
                std::to_string(j.uid),
                "--gid",
                std::to_string(j.gid),
                "--chroot-base-dir",
                j.chroot_base_dir};
        argv.insert(argv.end(), j.args.begin(), j.args.end());
        if (o.watch_prepared) argv.insert(argv.end(), {"--keep-fd", std::to_string(kReadyFd)});
        argv.push_back("--");
        jail_root = j.chroot_base_dir + "/" + std::filesystem::path(o.ember).filename().string() +
                    "/" + j.id + "/root";
        host_socket = jail_root + (o.socket_path.starts_with('/') ? "" : "/") + o.socket_path;
    } else {
        argv = {o.ember};
    }
    EMBER_TRY(check_socket_path(host_socket));
    argv.insert(argv.end(), {"--api-sock", o.socket_path});
    if (o.watch_prepared) argv.insert(argv.end(), {"--ready-fd", std::to_string(kReadyFd)});
    argv.insert(argv.end(), o.args.begin(), o.args.end());

    UniqueFd ready_read, ready_write;
    if (o.watch_prepared) {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return fail_errno("pipe2");
        ready_read.reset(ends[0]);
        ready_write.reset(ends[1]);
        // Above the descriptors the child's dup2s write to, so that none of them overwrites it.
        if (ready_write.get() <= kReadyFd) {
            ready_write.reset(::fcntl(ready_write.get(), F_DUPFD_CLOEXEC, kReadyFd + 1));
            if (!ready_write.valid()) return fail_errno("fcntl F_DUPFD_CLOEXEC");
        }
    }

    auto in = open_output("");
    EMBER_TRY(in);
    auto out = open_output(o.console_path);
    EMBER_TRY(out);
    auto err = open_output(o.log_path);
    EMBER_TRY(err);
    auto spawned = spawn_program(std::move(argv), in->get(), out->get(), err->get(),
                                 ready_write.valid() ? ready_write.get() : -1, kReadyFd);
    ready_write.reset();  // ember's alone: its end, or its exit, ends the pipe
    EMBER_TRY(spawned);
    const pid_t pid = spawned->pid;
    UniqueFd pidfd = std::move(spawned->pidfd);
    ClientOptions client_options = o.client;
    client_options.socket_path = host_socket;
    EmberProcess ember(std::move(o), pid, std::move(pidfd), std::move(ready_read),
                       std::move(jail_root), Client(std::move(client_options)));
    auto serving = ember.wait_until_serving();
    if (!serving) {
        (void)ember.stop();
        return std::unexpected(std::move(serving.error()));
    }
    return ember;
}

EmberProcess::EmberProcess(ProcessOptions options, pid_t pid, UniqueFd pidfd, UniqueFd ready,
                           std::string jail_root, Client client)
    : options_(std::move(options)),
      pid_(pid),
      pidfd_(std::move(pidfd)),
      ready_(std::move(ready)),
      jail_root_(std::move(jail_root)),
      client_(std::move(client)) {}

EmberProcess::EmberProcess(EmberProcess&& other) noexcept
    : options_(std::move(other.options_)),
      pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      status_(other.status_),
      ready_(std::move(other.ready_)),
      prepared_(other.prepared_),
      socket_identity_(other.socket_identity_),
      jail_root_(std::move(other.jail_root_)),
      client_(std::move(other.client_)) {}

EmberProcess& EmberProcess::operator=(EmberProcess&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) (void)stop();
        options_ = std::move(other.options_);
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        status_ = other.status_;
        ready_ = std::move(other.ready_);
        prepared_ = other.prepared_;
        socket_identity_ = other.socket_identity_;
        jail_root_ = std::move(other.jail_root_);
        client_ = std::move(other.client_);
    }
    return *this;
}

EmberProcess::~EmberProcess() {
    if (pid_ > 0) (void)stop();
}

Result<void> EmberProcess::wait_until_serving() {
    const auto deadline = Clock::now() + options_.start_timeout;
    const std::string what = "ember (" + options_.ember + ") at " + socket_path();
    // ember links its socket into place once it listens: woken by that, not by a timer.
    FolderWatch watch = FolderWatch::of(socket_path());
    for (;;) {
        // Ours, not another ember left serving at the same path (an agent's earlier life's).
        auto serving = server_pid(socket_path());
        if (serving && *serving == pid_) break;
        if (reap_within(std::chrono::milliseconds(0)))
            return fail(what + " " + describe_status(*status_) + " before serving its API" +
                        log_tail(options_.log_path));
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return fail(what + ": its API was not there within " +
                        std::to_string(options_.start_timeout.count()) + " ms" +
                        log_tail(options_.log_path));
        // kConnectRetry bounds each wait all the same: a look costs little, and an event
        // missed (the folder replaced under the watch) then costs what a poll did.
        watch.wait(std::min(left, kConnectRetry), pidfd_.get());
    }
    socket_identity_ = identity(socket_path());
    auto info = client_.describe_instance();
    EMBER_TRY(info, what);
    return {};
}

bool EmberProcess::prepared() {
    if (ready_.valid()) {
        char line[16];
        const ssize_t n = ::read(ready_.get(), line, sizeof line);
        // A line, or the pipe's end (ember ended, or was not started with --ready-fd): either
        // way nothing more will come.
        if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
            prepared_ = n > 0;
            ready_.reset();
        }
    }
    return prepared_;
}

Result<void> EmberProcess::wait_until_prepared(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    const std::string what = "ember (" + options_.ember + ") at " + socket_path();
    if (!options_.watch_prepared) return fail(what + ": not started to say when it is prepared");
    while (!prepared()) {
        if (!ready_.valid()) {
            // Its end closed the pipe: the pidfd follows at once.
            const auto left = std::max(deadline - Clock::now(), Clock::duration::zero());
            if (reap_within(std::chrono::ceil<std::chrono::milliseconds>(left)))
                return fail(what + " " + describe_status(*status_) + " before it was prepared" +
                            log_tail(options_.log_path));
            return fail(what + ": closed its --ready-fd without a line");
        }
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return fail(what + ": not prepared within " + std::to_string(timeout.count()) + " ms" +
                        log_tail(options_.log_path));
        pollfd p{.fd = ready_.get(), .events = POLLIN, .revents = 0};
        ::poll(&p, 1, poll_ms(left));
    }
    return {};
}

bool EmberProcess::reap_within(std::chrono::milliseconds timeout) {
    if (status_) return true;
    pollfd p{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, timeout.count() < 0 ? -1 : poll_ms(timeout));
    if (ready <= 0) return false;
    int status = 0;
    status_ = ::waitpid(pid_, &status, 0) == pid_ ? status : kReapedElsewhere;
    return true;
}

pid_t EmberProcess::release() {
    return std::exchange(pid_, -1);
}

bool EmberProcess::ended() {
    return status_ || (pid_ > 0 && reap_within(std::chrono::milliseconds(0)));
}

Result<int> EmberProcess::stop() {
    if (pid_ <= 0) {
        if (status_) return *status_;
        return fail("no ember process");
    }
    if (!status_) {
        // By its pidfd: the pid may be another process's by now if someone else reaped it.
        signal_pidfd(pidfd_.get(), SIGTERM);
        if (!reap_within(options_.stop_timeout)) {
            signal_pidfd(pidfd_.get(), SIGKILL);
            reap_within(std::chrono::milliseconds(-1));
        }
    }
    // SIGKILL leaves the socket behind; a socket made since at that path is someone else's.
    if (socket_identity_ && identity(socket_path()) == socket_identity_)
        ::unlink(socket_path().c_str());
    pid_ = -1;
    return *status_;
}

Result<void> stop_ember_at(const std::string& socket_path, std::chrono::milliseconds timeout) {
    auto pid = server_pid(socket_path);
    EMBER_TRY(pid);
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
    if (pidfd.get() < 0) return fail_errno("pidfd_open " + std::to_string(*pid));
    const auto before = identity(socket_path);
    // Only an ember is stopped: a mistaken path must not SIGKILL whatever else serves there.
    ClientOptions o;
    o.socket_path = socket_path;
    o.timeout = timeout;
    auto info = Client(std::move(o)).describe_instance();
    if (!info || info->app_name != "ember")
        return fail(socket_path + ": not an ember's API (" +
                    (info ? "app_name '" + info->app_name + "'" : info.error().message) +
                    "): not stopped");
    if (signal_pidfd(pidfd.get(), SIGTERM) != 0)
        return fail_errno("SIGTERM to " + std::to_string(*pid));
    pollfd p{.fd = pidfd.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, poll_ms(timeout)) != 1) {
        signal_pidfd(pidfd.get(), SIGKILL);
        p.revents = 0;
        if (::poll(&p, 1, poll_ms(timeout)) != 1)
            return fail("ember (pid " + std::to_string(*pid) + ") at " + socket_path +
                        " did not end after SIGKILL");
    }
    if (before && identity(socket_path) == before) ::unlink(socket_path.c_str());
    return {};
}

}  // namespace ember::client
