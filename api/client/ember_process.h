// api/client: one ember process, as a host agent runs it (the Go SDK's Machine): started plain or
// under ember-jailer, waited for until its API answers, within a bound (and, for a pool, watched
// until it has made its KVM VM ahead of a load), then driven through its Client, and stopped
// (SIGTERM, then SIGKILL after a bound) and reaped. A start that fails leaves nothing running and
// no socket behind; neither does the object going away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/client/client.h"
#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::client {

// ember-jailer's flags. ember then runs as `exec_file` inside <chroot_base_dir>/<its file
// name>/<id>/root, and the socket path is taken as the jail sees it. --daemonize and --new-pid-ns
// are refused: the jailer would fork, and the pid watched would not be ember's. The jail's
// directory, with its copy of ember, stays when the process ends: the agent put files there.
struct JailOptions {
    std::string jailer = "ember-jailer";
    std::string id;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string chroot_base_dir = "/srv/jailer";
    std::vector<std::string> args;  // the jailer's other flags: --netns, --cgroup, ...
};

struct ProcessOptions {
    std::string ember = "ember";    // the binary; under a jail, the exec file (absolute)
    std::string socket_path;        // --api-sock, as ember sees it
    std::vector<std::string> args;  // ember's other arguments (--id, --seccomp-level, ...)
    std::optional<JailOptions> jail;
    std::string log_path;      // ember's stderr, appended; empty: /dev/null
    std::string console_path;  // ember's stdout (the serial console), appended; empty: /dev/null
    std::chrono::milliseconds start_timeout{10'000};  // until its API answers
    std::chrono::milliseconds stop_timeout{5'000};    // from SIGTERM to SIGKILL
    // Whether ember is started with --ready-fd (a pipe's end as its fd 3, kept by the jailer's
    // --keep-fd), so that prepared() tells when it has made its KVM VM ahead of a load.
    bool watch_prepared = false;
    ClientOptions client;  // its socket_path is filled in
};

class EmberProcess {
  public:
    static Result<EmberProcess> start(ProcessOptions options);

    EmberProcess(EmberProcess&&) noexcept;
    EmberProcess& operator=(EmberProcess&&) noexcept;
    ~EmberProcess();

    Client& client() { return client_; }
    pid_t pid() const { return pid_; }
    // Readable once the process has ended: for a poll() over many.
    int pidfd() const { return pidfd_.get(); }
    // With watch_prepared: whether ember has made all it makes ahead of a load (its --ready-fd
    // line: the KVM VM's irqchip, PIT and vCPU 0, ~50 ms after its API answers), without waiting.
    bool prepared();
    // Readable once prepared() may have changed; -1 once it cannot any more: for a poll() over
    // many.
    int prepared_fd() const { return ready_.get(); }
    // prepared(), waiting up to `timeout`.
    Result<void> wait_until_prepared(std::chrono::milliseconds timeout);
    // The socket's path on this host (inside the jail's root when jailed).
    const std::string& socket_path() const { return client_.socket_path(); }
    // The jail's root on this host; empty when not jailed.
    const std::string& jail_root() const { return jail_root_; }

    // Whether the process has ended (it is then reaped; stop() still gives its status).
    bool ended();
    // SIGTERM, then SIGKILL once stop_timeout has passed; reaps it and removes its socket (if it
    // is still the one ember made). The wait status, as waitpid gives it, or -1 when someone else
    // reaped the process.
    Result<int> stop();
    // Leaves the process running on its own (emberctl boot): the object forgets it.
    pid_t release();

  private:
    EmberProcess(ProcessOptions options, pid_t pid, UniqueFd pidfd, UniqueFd ready,
                 std::string jail_root, Client client);
    Result<void> wait_until_serving();
    // Waits up to `timeout` for the process to end, and reaps it.
    bool reap_within(std::chrono::milliseconds timeout);

    ProcessOptions options_;
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    std::optional<int> status_;
    UniqueFd ready_;  // the --ready-fd pipe's read end, until its line or its end is read
    bool prepared_ = false;
    std::optional<std::pair<dev_t, ino_t>> socket_identity_;  // the socket file ember made
    std::string jail_root_;
    Client client_;
};

// Stops the ember serving at `socket_path`, started by someone else: its pid from the socket
// (SO_PEERCRED), checked to be an ember's by GET /, then SIGTERM, and SIGKILL once `timeout` has
// passed; returns once it has ended, its socket removed.
Result<void> stop_ember_at(const std::string& socket_path, std::chrono::milliseconds timeout);

}  // namespace ember::client
