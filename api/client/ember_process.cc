#include "api/client/ember_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <utility>

namespace ember::client {
namespace {

using Clock = std::chrono::steady_clock;

// How long one wait on the process lasts between tries to connect to its socket: the socket
// appears once ember has read its command line and made its VM's first pieces, in a few ms.
constexpr std::chrono::milliseconds kConnectRetry{2};

Result<UniqueFd> open_output(const std::string& path) {
    const int fd = path.empty()
                       ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                       : ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return fail_errno(path.empty() ? "/dev/null" : path);
    return UniqueFd(fd);
}

// A connection to the socket at `path`.
Result<UniqueFd> connect_to(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return fail(path + ": the path is too long");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return fail_errno("socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return fail_errno(path);
    return fd;
}

// Whether something accepts connections at `path` now.
bool accepts(const std::string& path) {
    return connect_to(path).has_value();
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
    return "ended (wait status " + std::to_string(status) + ")";
}

// The last lines of ember's log, for an error that says why it did not start.
std::string log_tail(const std::string& path) {
    if (path.empty()) return "";
    constexpr off_t kTail = 2000;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return "";
    const off_t size = ::lseek(fd.get(), 0, SEEK_END);
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
        argv.push_back("--");
        jail_root = j.chroot_base_dir + "/" + std::filesystem::path(o.ember).filename().string() +
                    "/" + j.id + "/root";
        host_socket = jail_root + "/" + o.socket_path;
    } else {
        argv = {o.ember};
    }
    argv.insert(argv.end(), {"--api-sock", o.socket_path});
    argv.insert(argv.end(), o.args.begin(), o.args.end());

    auto in = open_output("");
    EMBER_TRY(in);
    auto out = open_output(o.console_path);
    EMBER_TRY(out);
    auto err = open_output(o.log_path);
    EMBER_TRY(err);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);

    // posix_spawn, not fork: glibc's shares the agent's memory with the child until the exec
    // (CLONE_VM | CLONE_VFORK), so an agent with a large heap and other threads pays neither a
    // copy of its page tables nor their copy-on-write faults after. Nothing of the agent's (its
    // other embers' sockets, say) leaks into ember: every descriptor from 3 up is closed.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in->get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out->get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err->get(), 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    pid_t pid = -1;
    const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return fail_errno("starting " + argv[0], spawned);
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (pidfd.get() < 0) {
        const int error = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return fail_errno("pidfd_open", error);
    }
    ClientOptions client_options = o.client;
    client_options.socket_path = host_socket;
    EmberProcess ember(std::move(o), pid, std::move(pidfd), std::move(jail_root),
                       Client(std::move(client_options)));
    auto serving = ember.wait_until_serving();
    if (!serving) {
        (void)ember.stop();
        return std::unexpected(std::move(serving.error()));
    }
    return ember;
}

EmberProcess::EmberProcess(ProcessOptions options, pid_t pid, UniqueFd pidfd, std::string jail_root,
                           Client client)
    : options_(std::move(options)),
      pid_(pid),
      pidfd_(std::move(pidfd)),
      jail_root_(std::move(jail_root)),
      client_(std::move(client)) {}

EmberProcess::EmberProcess(EmberProcess&& other) noexcept
    : options_(std::move(other.options_)),
      pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      status_(other.status_),
      jail_root_(std::move(other.jail_root_)),
      client_(std::move(other.client_)) {}

EmberProcess& EmberProcess::operator=(EmberProcess&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) (void)stop();
        options_ = std::move(other.options_);
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        status_ = other.status_;
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
    while (!accepts(socket_path())) {
        if (reap_within(kConnectRetry))
            return fail(what + " " + describe_status(*status_) + " before serving its API" +
                        log_tail(options_.log_path));
        if (Clock::now() >= deadline)
            return fail(what + ": its API was not there within " +
                        std::to_string(options_.start_timeout.count()) + " ms" +
                        log_tail(options_.log_path));
    }
    auto info = client_.describe_instance();
    EMBER_TRY(info, what);
    return {};
}

bool EmberProcess::reap_within(std::chrono::milliseconds timeout) {
    if (status_) return true;
    pollfd p{.fd = pidfd_.get(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return false;
    status_ = status;
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
        ::kill(pid_, SIGTERM);
        if (!reap_within(options_.stop_timeout)) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            if (::waitpid(pid_, &status, 0) != pid_) return fail_errno("waitpid");
            status_ = status;
        }
    }
    ::unlink(socket_path().c_str());
    pid_ = -1;
    return *status_;
}

Result<void> stop_ember_at(const std::string& socket_path, std::chrono::milliseconds timeout) {
    auto fd = connect_to(socket_path);
    EMBER_TRY(fd);
    ucred peer{};
    socklen_t size = sizeof peer;
    if (::getsockopt(fd->get(), SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0)
        return fail_errno(socket_path + ": SO_PEERCRED");
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0)));
    if (pidfd.get() < 0) return fail_errno("pidfd_open " + std::to_string(peer.pid));
    fd->reset();
    if (::kill(peer.pid, SIGTERM) != 0) return fail_errno("kill " + std::to_string(peer.pid));
    pollfd p{.fd = pidfd.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) return {};
    ::kill(peer.pid, SIGKILL);
    p.revents = 0;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) return {};
    return fail("ember (pid " + std::to_string(peer.pid) + ") at " + socket_path +
                " did not end after SIGKILL");
}

}  // namespace ember::client
