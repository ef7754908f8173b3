#include "api/server/api_socket.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace ember::api {

Result<UniqueFd> listen_unix_socket(const std::string& path, bool replace_stale) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("--api-sock " + path + ": path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const std::string in_use =
        "Failed to open the API socket at: " + path + ". Check that it is not already used.";
    UniqueFd dir_lock;
    if (replace_stale) {
        const std::string dir = path.find('/') == std::string::npos
                                    ? std::string(".")
                                    : path.substr(0, std::max<size_t>(path.rfind('/'), 1));
        dir_lock = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir_lock.valid()) return fail_errno("--api-sock " + dir);
        if (::flock(dir_lock.get(), LOCK_EX) < 0) return fail_errno("--api-sock: lock " + dir);
    }
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return fail(in_use + " (a file that is not a socket is there)");
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!probe.valid()) return fail_errno("socket");
        if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
            return fail(in_use + " (another process is listening on it)");
        if (!replace_stale)
            return fail(in_use +
                        " (nobody listens on it: remove it, or start with --replace-stale-socket)");
        ::unlink(path.c_str());  // stale: left by a process that is gone
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return fail_errno("socket");
    // Bound and listening under a private name first, then linked to its own: a client that sees
    // the socket file can connect at once (bound but not yet listening, it would be refused).
    const size_t slash = path.rfind('/');
    const std::string staging = path.substr(0, slash == std::string::npos ? 0 : slash + 1) +
                                ".ember-api-" + std::to_string(::getpid()) + ".sock";
    const bool staged = staging.size() < sizeof addr.sun_path;
    sockaddr_un bind_addr = addr;
    if (staged) {
        std::memcpy(bind_addr.sun_path, staging.c_str(), staging.size() + 1);
        ::unlink(staging.c_str());  // a crashed ember's with our pid
    }
    mode_t old = ::umask(0177);  // the socket file is created 0600
    int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr);
    ::umask(old);
    if (bound < 0) return fail_errno("--api-sock " + path);
    if (::listen(fd.get(), 128) < 0) {
        if (staged) ::unlink(staging.c_str());
        return fail_errno("listen");
    }
    if (staged) {
        const int linked = ::link(staging.c_str(), path.c_str());
        const int err = errno;
        ::unlink(staging.c_str());
        if (linked < 0 && err == EEXIST) return fail(in_use + " (a file appeared there meanwhile)");
        if (linked < 0) return fail_errno("--api-sock " + path, err);
    }
    return fd;
}

}  // namespace ember::api
