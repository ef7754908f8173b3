#include "core/host_check/host_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>

#include "core/base/unique_fd.h"
#include "core/host_check/probe_vm.h"
#include "core/kvm/kvm.h"

namespace ember {
namespace {

CheckLine ok(std::string item, std::string detail) {
    return {std::move(item), CheckStatus::Ok, std::move(detail), {}};
}
CheckLine bad(std::string item, CheckStatus status, std::string detail, std::string fix) {
    return {std::move(item), status, std::move(detail), std::move(fix)};
}

std::string millions(double per_second) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", per_second / 1e6);
    return buf;
}

// /dev/kvm, its API version and capabilities; on success the opened Kvm for the probe.
std::optional<Kvm> check_kvm(const std::string& path, std::vector<CheckLine>& lines) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) {
        int err = errno;
        if (err == ENOENT)
            lines.push_back(bad(path, CheckStatus::Missing, "does not exist",
                                "load kvm_intel or kvm_amd, enable virtualisation in the firmware, "
                                "or on a VM enable nested virtualisation on its host; "
                                "tests/nested/run runs ember inside a VM that has KVM"));
        else
            lines.push_back(bad(path, CheckStatus::Broken,
                                std::string("cannot be opened: ") + std::strerror(err),
                                "run ember as root, or give its user read-write access (the kvm "
                                "group)"));
        return std::nullopt;
    }
    int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        lines.push_back(bad(path, CheckStatus::Broken,
                            "KVM API version " + std::to_string(version) + ", ember needs " +
                                std::to_string(KVM_API_VERSION),
                            "use a kernel with KVM API version 12 (every kernel since 2.6.22)"));
        return std::nullopt;
    }
    lines.push_back(ok(path, "API version " + std::to_string(version)));

    std::string missing, present;
    for (const auto& cap : required_kvm_capabilities()) {
        std::string& list = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, cap.id) > 0 ? present : missing;
        list += (list.empty() ? "" : ", ") + std::string(cap.name + 8);  // without "KVM_CAP_"
    }
    if (!missing.empty()) {
        lines.push_back(bad("KVM capabilities", CheckStatus::Missing, missing,
                            "use a newer host kernel, or a hypervisor that offers these to "
                            "nested guests"));
        return std::nullopt;
    }
    lines.push_back(ok("KVM capabilities", present));
    auto kvm = Kvm::open(path);
    if (!kvm) {
        lines.push_back(bad("KVM capabilities", CheckStatus::Broken, kvm.error().message, ""));
        return std::nullopt;
    }
    return std::move(*kvm);
}

void check_guest(const Kvm& kvm, std::vector<CheckLine>& lines, bool& can_run) {
    auto probe = run_probe_vm(kvm);
    if (!probe) {
        lines.push_back(bad("guest", CheckStatus::Broken,
                            "a minimal guest did not run: " + probe.error().message,
                            "check the host's KVM (dmesg)"));
        return;
    }
    can_run = true;
    if (probe->dirty_log_saw_write)
        lines.push_back(ok("dirty logging", "KVM's dirty log shows a guest write"));
    else
        lines.push_back(bad("dirty logging", CheckStatus::Broken,
                            "KVM's dirty log missed a guest write",
                            "Diff snapshots would be wrong here; take Full snapshots only"));

    std::string rates = millions(probe->ring0_per_second) + " M instructions/s in ring 0";
    if (probe->ring3_per_second)
        rates += " and " + millions(*probe->ring3_per_second) + " M in ring 3";
    if (ring0_is_emulated(*probe))
        lines.push_back(bad("guest ring 0", CheckStatus::Slow,
                            "emulated in software (" + rates +
                                "): a real kernel boots in minutes, not milliseconds",
                            "use a host with hardware virtualisation (vmx/svm) for "
                            "production; tests/nested/run is faster here"));
    else
        lines.push_back(ok("guest ring 0", "as fast as ring 3: " + rates));

    if (probe->syscall_problem.empty())
        lines.push_back(ok("guest user space", "a ring-3 SYSCALL arrives in ring 0"));
    else
        lines.push_back(bad("guest user space", CheckStatus::Broken,
                            "a ring-3 SYSCALL did not arrive in ring 0 (" + probe->syscall_problem +
                                "): a real guest's init and programs cannot run",
                            "use a host with hardware virtualisation, or tests/nested/run"));
}

CheckLine check_io_uring() {
    io_uring ring{};
    int r = ::io_uring_queue_init(2, &ring, 0);
    if (r == 0) {
        ::io_uring_queue_exit(&ring);
        return ok("io_uring", "a ring can be set up");
    }
    if (r == -ENOSYS || r == -EPERM)
        return bad("io_uring", CheckStatus::Missing,
                   std::string("io_uring_setup: ") + std::strerror(-r),
                   "allow io_uring (sysctl kernel.io_uring_disabled=0, or the container's "
                   "seccomp profile), or give drives \"io_engine\": \"Sync\"");
    return bad("io_uring", CheckStatus::Broken, std::string("io_uring_setup: ") + std::strerror(-r),
               "give drives \"io_engine\": \"Sync\"");
}

CheckLine check_tun(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (fd.valid()) return ok(path, "can be opened");
    int err = errno;
    return bad(path, err == ENOENT ? CheckStatus::Missing : CheckStatus::Broken, std::strerror(err),
               "modprobe tun (network interfaces need it; VMs without them do not)");
}

CheckLine check_userfaultfd() {
    UniqueFd fd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
    if (fd.valid()) return ok("userfaultfd", "available");
    int err = errno;
    return bad("userfaultfd", err == ENOSYS ? CheckStatus::Missing : CheckStatus::Broken,
               std::strerror(err),
               err == EPERM ? "sysctl vm.unprivileged_userfaultfd=1, or run as root"
                            : "use a kernel with CONFIG_USERFAULTFD");
}

bool is_fs(const std::string& path, long magic) {
    struct statfs st{};
    return ::statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == magic;
}

CheckLine check_cgroups(const std::string& root) {
    if (is_fs(root, CGROUP2_SUPER_MAGIC)) return ok("cgroups", "v2 (unified) at " + root);
    std::vector<std::string> v1;
    std::string v2;
    if (DIR* dir = ::opendir(root.c_str())) {
        while (dirent* e = ::readdir(dir)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            if (is_fs(root + "/" + name, CGROUP_SUPER_MAGIC))
                v1.push_back(name);
            else if (is_fs(root + "/" + name, CGROUP2_SUPER_MAGIC))
                v2 = root + "/" + name;
        }
        ::closedir(dir);
    }
    std::sort(v1.begin(), v1.end());
    if (v1.empty() && v2.empty())
        return bad("cgroups", CheckStatus::Missing, "no cgroup hierarchy under " + root,
                   "mount -t cgroup2 none " + root + " (the jailer's --cgroup needs one)");
    std::string detail;
    if (!v1.empty()) {
        detail = "v1 (";
        for (size_t i = 0; i < v1.size(); ++i) detail += (i ? ", " : "") + v1[i];
        detail += ") under " + root;
    }
    if (!v2.empty()) detail += (detail.empty() ? "v2 at " : " and v2 at ") + v2;
    return ok("cgroups", detail);
}

}  // namespace

HostReport check_host(const HostCheckPaths& paths) {
    HostReport report;
    auto kvm = check_kvm(paths.kvm, report.lines);
    if (kvm)
        check_guest(*kvm, report.lines, report.can_run_vms);
    else
        for (const char* item : {"guest ring 0", "guest user space"})
            report.lines.push_back(bad(item, CheckStatus::NotChecked, "needs KVM", ""));
    report.lines.push_back(check_io_uring());
    report.lines.push_back(check_tun(paths.tun));
    report.lines.push_back(check_userfaultfd());
    report.lines.push_back(check_cgroups(paths.cgroup_root));
    return report;
}

std::string format_check_line(const CheckLine& line) {
    if (line.status == CheckStatus::Ok) return line.item + ": ok (" + line.detail + ")";
    const char* word = "not checked";
    if (line.status == CheckStatus::Slow) word = "slow";
    if (line.status == CheckStatus::Missing) word = "missing";
    if (line.status == CheckStatus::Broken) word = "broken";
    std::string text = line.item + ": " + word + ": " + line.detail;
    if (!line.fix.empty()) text += ". Fix: " + line.fix;
    return text;
}

}  // namespace ember
