// A cgroup of its own with a limit on tasks (processes and threads), for tests that need thread
// creation to fail the way it does on a host whose pids limit has been reached (EAGAIN). Uses the
// cgroup v2 hierarchy where /sys/fs/cgroup is one, and v1's pids hierarchy otherwise.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/base/error.h"

namespace ember::testing {

class PidsCgroup {
  public:
    static Result<PidsCgroup> create();
    ~PidsCgroup();
    PidsCgroup(PidsCgroup&& other) noexcept : dir_(std::move(other.dir_)) { other.dir_.clear(); }
    PidsCgroup& operator=(PidsCgroup&&) = delete;

    // Moves a process, all its threads with it, into the cgroup.
    Result<void> add(pid_t pid) const;
    // How many tasks are in it now.
    Result<long> current() const;
    Result<void> set_max(long tasks) const;
    Result<void> set_unlimited() const;

  private:
    explicit PidsCgroup(std::string dir) : dir_(std::move(dir)) {}
    Result<void> write(const std::string& file, const std::string& value) const;
    std::string dir_;
};

}  // namespace ember::testing
