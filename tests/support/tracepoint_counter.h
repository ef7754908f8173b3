// How often one thread hits one of the kernel's tracepoints (a perf event on it): the system calls
// a benchmark's thread makes, the stage-2 page faults KVM takes for a vCPU. Mounts tracefs where
// nothing has (root only). Invalid where the kernel lacks the event or forbids perf events.
#pragma once

#include <linux/perf_event.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include "core/base/unique_fd.h"

namespace ember::testing {

class TracepointCounter {
  public:
    // `event` as tracefs names it, "raw_syscalls/sys_enter"; `tid` 0 is the calling thread.
    explicit TracepointCounter(const std::string& event, pid_t tid = 0) {
        if (open(event, tid)) return;
        if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0) open(event, tid);
    }
    bool valid() const { return fd_.get() >= 0; }
    std::optional<uint64_t> now() const {
        uint64_t n = 0;
        if (!valid() || ::read(fd_.get(), &n, sizeof n) != sizeof n) return std::nullopt;
        return n;
    }

  private:
    bool open(const std::string& event, pid_t tid) {
        for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
            std::ifstream id(std::string(root) + "/events/" + event + "/id");
            uint64_t config = 0;
            if (!(id >> config)) continue;
            perf_event_attr attr{};
            attr.type = PERF_TYPE_TRACEPOINT;
            attr.size = sizeof attr;
            attr.config = config;
            fd_ = UniqueFd(static_cast<int>(
                ::syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC)));
            if (valid()) return true;
        }
        return false;
    }
    UniqueFd fd_;
};

}  // namespace ember::testing
