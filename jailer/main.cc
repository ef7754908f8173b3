// ember-jailer: Firecracker's jailer, step by step in its order, ending in ember exec'd inside
// the jail as the jail's uid and gid. Everything a flag names is checked before anything is
// made; a step that fails before ember runs removes what this run made of the jail.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "jailer/cgroups.h"
#include "jailer/enter.h"
#include "jailer/jail.h"
#include "jailer/libraries.h"
#include "jailer/options.h"
#include "jailer/process.h"

namespace ember::jailer {
namespace {

uint64_t now_us(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// What the flags name, looked at before anything is made.
struct Checked {
    std::vector<std::string> libraries;
    std::vector<CgroupMount> cgroup_mounts;
};

Result<Checked> check(const JailerOptions& o) {
    EMBER_TRY(check_exec_file(o.exec_file));
    Checked c;
    auto libraries = shared_libraries({o.exec_file}, default_library_dirs());
    EMBER_TRY(libraries);
    c.libraries = std::move(*libraries);
    if (o.netns) {
        struct stat st{};
        if (::stat(o.netns->c_str(), &st) < 0) return fail_errno("--netns " + *o.netns);
    }
    c.cgroup_mounts = parse_cgroup_mounts(read_text("/proc/mounts"));
    return c;
}

// Everything this run made of the jail, removed after a failure before ember runs, so that the id
// can be used again: the whole jail where this run made its directories, else what it put in.
// (enter_root takes away its own mounts when it fails.)
void remove_jail(const JailerOptions& o, const std::string& outermost) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!outermost.empty())
        fs::remove_all(outermost, ec);
    else
        fs::remove(fs::path(o.chroot_dir()) / o.exec_name(), ec);
}

// The jail's part on the host, up to pivot_root. `built` says whether this run made the jail.
Result<void> prepare(const JailerOptions& o, const Checked& c, bool& built) {
    EMBER_TRY(build_jail(o));
    built = true;
    EMBER_TRY(join_cgroups(o, c.cgroup_mounts, ::getpid()));
    if (o.netns) EMBER_TRY(join_netns(*o.netns));
    return {};
}

Result<void> write_pid_file(const JailerOptions& o, pid_t pid) {
    const std::string path = "/" + o.exec_name() + ".pid";
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) return fail_errno(path);
    const std::string text = std::to_string(pid);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail_errno(path);
    return {};
}

// Double fork: the daemon is no session leader, so it can never get a controlling terminal.
Result<void> daemonize(const UniqueFd& dev_null) {
    for (int round = 0; round < 2; ++round) {
        pid_t pid = ::fork();
        if (pid < 0) return fail_errno("fork");
        if (pid > 0) ::_exit(0);
        if (round == 0 && ::setsid() < 0) return fail_errno("setsid");
    }
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
        if (::dup2(dev_null.get(), fd) < 0) return fail_errno("dup2 /dev/null");
    return {};
}

// Returns only when the exec failed.
Result<void> exec_ember(const JailerOptions& o, uint64_t start_us, uint64_t start_cpu_us) {
    std::vector<std::string> args = {"/" + o.exec_name(),
                                     "--id",
                                     o.id,
                                     "--start-time-us",
                                     std::to_string(start_us),
                                     "--start-time-cpu-us",
                                     std::to_string(start_cpu_us)};
    args.insert(args.end(), o.exec_args.begin(), o.exec_args.end());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char* no_environment[] = {nullptr};
    ::execve(argv[0], argv.data(), no_environment);
    return fail_errno(std::string("exec ") + argv[0]);
}

// In the jail: daemonize, the pid namespace and pid file, the ids, then ember.
Result<void> finish(const JailerOptions& o, const UniqueFd& dev_null, uint64_t start_us,
                    uint64_t start_cpu_us) {
    if (o.daemonize) EMBER_TRY(daemonize(dev_null));
    if (o.new_pid_ns) {
        // Without --daemonize the jailer may lead its session, and its exit would send ember
        // SIGHUP: ember gets a session of its own.
        const bool leader = !o.daemonize && ::getsid(0) == ::getpid();
        if (::unshare(CLONE_NEWPID) < 0) return fail_errno("unshare(CLONE_NEWPID)");
        pid_t pid = ::fork();
        if (pid < 0) return fail_errno("fork");
        if (pid > 0) {
            // The jailer's work ends here; ember is pid 1 of its namespace.
            auto written = write_pid_file(o, pid);
            if (!written)
                std::fprintf(stderr, "ember-jailer: %s\n", written.error().message.c_str());
            ::_exit(written ? 0 : 1);
        }
        if (leader && ::setsid() < 0) return fail_errno("setsid");
    } else {
        EMBER_TRY(write_pid_file(o, ::getpid()));
    }
    // Late, so that no step of the jailer's own (the pid file, a failed run's clean-up) runs out
    // of what a --resource-limit leaves to ember; still as root, which may raise a limit.
    EMBER_TRY(apply_resource_limits(o.resource_limits));
    EMBER_TRY(drop_to(o.uid, o.gid));
    return exec_ember(o, start_us, start_cpu_us);
}

int run(int argc, char** argv) {
    const uint64_t start_us = now_us(CLOCK_MONOTONIC);
    const uint64_t start_cpu_us = now_us(CLOCK_PROCESS_CPUTIME_ID);
    auto failed = [](const Error& e) {
        std::fprintf(stderr, "ember-jailer: %s\n", e.message.c_str());
        return 1;
    };
    const std::vector<std::string> args(argv + 1, argv + argc);
    auto options = parse_options(args);
    if (!options) return failed(options.error());
    const JailerOptions& o = *options;
    if (auto r = close_inherited_fds(o.keep_fd); !r) return failed(r.error());
    clear_environment();
    auto checked = check(o);
    if (!checked) return failed(checked.error());
    const std::string outermost = outermost_missing_dir(o.chroot_dir());
    UniqueFd dev_null;
    bool built = false;
    auto outside = [&]() -> Result<void> {
        EMBER_TRY(prepare(o, *checked, built));
        // Opened while the host's /dev is still there.
        if (o.daemonize) {
            dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
            if (!dev_null.valid()) return fail_errno("/dev/null");
        }
        return enter_root(o.chroot_dir(), checked->libraries);
    };
    if (auto r = outside(); !r) {
        // build_jail removes what it made itself when it fails; a jail that holds another run's
        // ember is that run's, and stays.
        if (built) remove_jail(o, outermost);
        return failed(r.error());
    }
    auto r = finish(o, dev_null, start_us, start_cpu_us);
    // Inside the jail now: what ember would have run from goes, so the id can be used again.
    for (const std::string& file : {o.exec_name(), o.exec_name() + ".pid"})
        ::unlink(("/" + file).c_str());
    return failed(r.error());
}

}  // namespace
}  // namespace ember::jailer

int main(int argc, char** argv) {
    return ember::jailer::run(argc, argv);
}
