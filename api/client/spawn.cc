#include "api/client/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;  // NOLINT: posix_spawn's

namespace ember::client {

int signal_pidfd(int pidfd, int signal) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

Result<UniqueFd> open_output(const std::string& path) {
    const int fd = path.empty()
                       ? ::open("/dev/null", O_WRONLY | O_CLOEXEC)
                       : ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return fail_errno(path.empty() ? "/dev/null" : path);
    return UniqueFd(fd);
}

Result<Spawned> spawn_program(std::vector<std::string> argv, int in, int out, int err, int extra,
                              int extra_as) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    posix_spawn_file_actions_adddup2(&actions, err, 2);
    if (extra >= 0) posix_spawn_file_actions_adddup2(&actions, extra, extra_as);
    posix_spawn_file_actions_addclosefrom_np(&actions, extra >= 0 ? extra_as + 1 : 3);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    Spawned s;
    const int spawned =
        ::posix_spawnp(&s.pid, args[0], &actions, &attributes, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (spawned != 0) return fail_errno("starting " + argv[0], spawned);
    s.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, s.pid, 0)));
    if (!s.pidfd.valid()) {
        const int error = errno;
        ::kill(s.pid, SIGKILL);
        ::waitpid(s.pid, nullptr, 0);
        return fail_errno("pidfd_open", error);
    }
    return s;
}

}  // namespace ember::client
