// core/host_check: `ember --check-host`, the report an operator runs before deploying (like
// libvirt's virt-host-validate). One line per item, "ok" or what is wrong and how to fix it:
// /dev/kvm and the capabilities ember uses, how the host's KVM runs a real guest (ring-0 speed, a
// ring-3 SYSCALL round trip, the dirty log), io_uring, /dev/net/tun, userfaultfd and the cgroup
// layout. tests/run-all reads the "guest user space" line to choose where real-guest tests run.
#pragma once

#include <string>
#include <vector>

namespace ember {

enum class CheckStatus { Ok, Slow, Missing, Broken, NotChecked };

struct CheckLine {
    std::string item;
    CheckStatus status;
    std::string detail;  // for Ok, what was found; otherwise what is wrong
    std::string fix;     // empty for Ok
};

struct HostReport {
    std::vector<CheckLine> lines;
    // KVM opens with every capability ember needs and runs a guest; the rest may be missing.
    bool can_run_vms = false;
};

struct HostCheckPaths {
    std::string kvm = "/dev/kvm";
    std::string tun = "/dev/net/tun";
    std::string cgroup_root = "/sys/fs/cgroup";
};

// Runs the whole check. Starts a throwaway VM (see probe_vm.h): call it before any other thread.
HostReport check_host(const HostCheckPaths& paths = {});

// "item: ok (detail)" or "item: slow|missing|broken: detail. Fix: fix".
std::string format_check_line(const CheckLine& line);

}  // namespace ember
