#include "tests/support/ember_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/base/unique_fd.h"

namespace ember::testing {

pid_t spawn(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
            const std::string& cwd) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(126);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
        ::dup2(in_fd, STDIN_FILENO);
        ::dup2(out_fd, STDOUT_FILENO);
        ::dup2(err_fd, STDERR_FILENO);
        // Nothing of the test's own (ctest's log, a pty's master, a pipe's other end) reaches the
        // child: a process holding a pipe's write end would keep its reader from ever seeing the
        // end.
        ::close_range(3, ~0U, 0);
        std::vector<char*> args;
        args.reserve(argv.size() + 1);
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

std::optional<int> wait_for_end(pid_t pid, std::chrono::milliseconds timeout) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return std::nullopt;
        }
        ::poll(nullptr, 0, 5);
    }
    return status;
}

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::optional<SignalOnOutput>& on_output) {
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2 failed");
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = spawn(argv, devnull, out_pipe[1], err_pipe[1]);
    ::close(devnull);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);

    ProcessResult result;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool term_sent = false;
    bool signalled = false;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            if (!term_sent) {
                result.timed_out = true;
                ::kill(pid, SIGTERM);
                term_sent = true;
                deadline = now + std::chrono::seconds(5);
            } else {
                ::kill(pid, SIGKILL);
                deadline = now + std::chrono::hours(1);
            }
        }
        auto wait_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        int n = ::poll(fds, 2, static_cast<int>(std::min<long>(wait_ms, 1000)));
        if (n <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
            if (r > 0) {
                (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(r));
                if (i == 0 && on_output && !signalled &&
                    result.out.find(on_output->text) != std::string::npos) {
                    ::kill(pid, on_output->signal);
                    signalled = true;
                }
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ember-test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
}

std::string guest_config(const std::string& kernel, int mem_mib, const std::string& boot_args) {
    std::ostringstream json;
    json << R"({"boot-source": {"kernel_image_path": ")" << kernel << '"';
    if (!boot_args.empty()) json << R"(, "boot_args": ")" << boot_args << '"';
    json << R"(}, "machine-config": {"vcpu_count": 1, "mem_size_mib": )" << mem_mib << "}}";
    return json.str();
}

// read(2) in large pieces: a snapshot's memory file is tens of MiB, which a stream iterator takes a
// character at a time, and under ASan in the nested runner that cost a test minutes.
bool takes_user_xattrs(const std::string& folder) {
    const std::string probe = folder + "/.xattr-probe";
    const UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    const bool ok = fd.valid() && ::fsetxattr(fd.get(), "user.probe", "1", 1, 0) == 0;
    ::unlink(probe.c_str());
    return ok;
}

std::string read_file(const std::string& path) {
    std::string bytes;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return bytes;
    struct stat st{};
    if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode))
        bytes.reserve(static_cast<size_t>(st.st_size));
    char chunk[1 << 16];
    ssize_t n;
    while ((n = ::read(fd.get(), chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) bytes.append(chunk, static_cast<size_t>(n));
    return bytes;
}

int count_lines_containing(const std::string& text, const std::string& needle) {
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line))
        if (line.find(needle) != std::string::npos) ++n;
    return n;
}

std::vector<std::pair<std::string, std::string>> thread_statuses(pid_t pid) {
    std::vector<std::pair<std::string, std::string>> out;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::string status = read_file(task.path().string() + "/status");
        if (!status.empty()) out.emplace_back(task.path().string(), std::move(status));
    }
    return out;
}

namespace {

// A TCP socket bound to 127.0.0.1 at a port the kernel picks, and that port; invalid on failure.
UniqueFd bound_on_loopback(int& port) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (!s.valid() || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return UniqueFd();
    port = ntohs(a.sin_port);
    return s;
}

}  // namespace

int free_loopback_port() {
    int port = 0;
    (void)bound_on_loopback(port);
    return port;
}

UniqueFd listen_on_loopback(int backlog, int& port) {
    UniqueFd s = bound_on_loopback(port);
    if (!s.valid() || ::listen(s.get(), backlog) != 0) return UniqueFd();
    return s;
}

std::string read_until(int fd, const std::string& needle, std::chrono::milliseconds timeout) {
    std::string seen;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (seen.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[512];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        seen.append(buf, static_cast<size_t>(n));
    }
    return seen;
}

}  // namespace ember::testing
