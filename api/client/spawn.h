// api/client: starting a program the client runs for an agent (ember, its jailer, ember-uffd):
// posix_spawn, not fork: glibc's shares the agent's memory with the child until the exec
// (CLONE_VM | CLONE_VFORK), so an agent with a large heap and other threads pays neither a copy of
// its page tables nor their copy-on-write faults after. Nothing of the agent's (its other embers'
// sockets, say) leaks into the child: every descriptor from 3 up is closed but the one asked for.
// Every signal at its default and none blocked: an agent that ignores SIGTERM or blocks SIGCHLD
// must not pass that on.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::client {

// A file opened to append a child's output to; /dev/null where `path` is empty.
Result<UniqueFd> open_output(const std::string& path);

struct Spawned {
    pid_t pid = -1;
    UniqueFd pidfd;  // readable once it has ended
};

// Signals the process that `pidfd` names (pidfd_send_signal): never another that took its pid.
int signal_pidfd(int pidfd, int signal);

// `argv[0]` found on PATH; its stdin, stdout and stderr `in`, `out` and `err`, and `extra` (when
// not -1) as its descriptor `extra_as`.
Result<Spawned> spawn_program(std::vector<std::string> argv, int in, int out, int err,
                              int extra = -1, int extra_as = -1);

}  // namespace ember::client
