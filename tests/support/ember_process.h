// Runs a real ember process for tests: writes its config, captures stdout and stderr, and stops it
// (SIGTERM, then SIGKILL) if it outlives the timeout, so a hung guest fails a test instead of
// hanging the suite.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/base/unique_fd.h"

namespace ember::testing {

// How long a test waits for something that should happen before it calls it hung. A failsafe,
// never a measurement: sized for hosts where everything, ember included, runs emulated and
// loaded, so a slow host never fails a test that a fast one passes.
inline constexpr std::chrono::seconds kFailsafe{300};

struct ProcessResult {
    int exit_code = -1;  // -1 when killed by a signal
    int signal = 0;
    bool timed_out = false;
    std::string out;
    std::string err;
};

// Sends `signal` once the process's stdout contains `text`: stops a process at a point the test
// observed rather than after a guessed time.
struct SignalOnOutput {
    std::string text;
    int signal = 15;  // SIGTERM
};

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::optional<SignalOnOutput>& on_output = std::nullopt);

// Reads fd until `needle` has been seen, the fd ends or `timeout` passes; everything read.
std::string read_until(int fd, const std::string& needle, std::chrono::milliseconds timeout);

// fork + exec with the given stdin, stdout and stderr (each dup'ed in the child), in `cwd` when it
// is not empty; returns the pid.
pid_t spawn(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
            const std::string& cwd = "");

// Waits for the child `pid` to end, at most `timeout`; its wait status, or nothing when it had not
// ended by then (it is then killed and reaped, so no test leaves it behind).
std::optional<int> wait_for_end(pid_t pid, std::chrono::milliseconds timeout);

// A fresh temporary directory, removed with everything in it when the object goes.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string write(const std::string& name, const std::string& content) const;

  private:
    std::string path_;
};

// Whether files in `folder` take user xattrs (tmpfs before Linux 6.6 does not).
bool takes_user_xattrs(const std::string& folder);

// The config-file JSON for a guest kernel image, with optional extra machine-config fields.
std::string guest_config(const std::string& kernel, int mem_mib = 16,
                         const std::string& boot_args = "");

// The whole content of a file; empty if it cannot be read.
std::string read_file(const std::string& path);

// Lines of `text` that contain `needle`.
int count_lines_containing(const std::string& text, const std::string& needle);

// The /proc status of each thread of `pid` alive now, by its /proc path; a thread that ends between
// the listing and its read is left out (its status reads empty).
std::vector<std::pair<std::string, std::string>> thread_statuses(pid_t pid);

// A TCP port on 127.0.0.1 that nothing listened on a moment ago, for a server a test starts.
int free_loopback_port();
// A TCP socket listening on 127.0.0.1 at a port the kernel picks (put in `port`), for a server a
// test or a benchmark runs itself; invalid where it could not be made.
UniqueFd listen_on_loopback(int backlog, int& port);

}  // namespace ember::testing
