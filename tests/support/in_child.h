// Runs a check in a forked child, for steps that change a process for good (its fds, ids,
// namespaces, limits): the test process keeps its own.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace ember::testing {

// The child's exit code: `check`'s result (0 when everything held), or 100 if it died.
inline int in_child(const std::function<int()>& check) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(check());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

}  // namespace ember::testing
