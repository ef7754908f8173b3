#include "core/seccomp/install.h"

#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "core/base/fatal_exit.h"
#include "core/base/log.h"
#include "core/seccomp/library_calls.h"

namespace ember::seccomp {
namespace {

// Set without a system call, so the handler needs none but the write it reports with.
thread_local const char* t_kind = "main";

// SIGSYS's si_code when a filter's trap raised it: the kernel's SYS_SECCOMP, which glibc's headers
// do not name.
constexpr int kSysSeccomp = 1;

// Process-wide, because a signal handler has nowhere else to count.
std::atomic<uint64_t> g_refused_lookups{0};
constexpr uint64_t kLookupsReported = 16;  // a library retrying in a loop does not flood the log

// Async-signal-safe: no allocation, no lock, one write. Only a SIGSYS the kernel raised for a
// filter's trap is acted on: one sent by a process (kill, sigqueue) carries no system call, and
// taking it for one would write a made-up result into whatever the thread was doing.
void on_sigsys(int, siginfo_t* info, void* context) {
    char line[400];
    char* end = line + sizeof line - 1;
    if (info->si_code != kSysSeccomp) {
        char* at = line + log::format_prefix(line, sizeof line, log::Level::Warn);
        at = log::append(at, end, "ignored a SIGSYS sent by process ");
        at = log::append_number(at, end, info->si_pid);
        at = log::append(at, end, ": it did not come from a seccomp filter\n");
        log::write_raw(line, static_cast<size_t>(at - line));
        return;
    }
    const bool lookup = is_file_lookup(info->si_syscall);
    const uint64_t refused = lookup ? g_refused_lookups.fetch_add(1) : 0;
    char* at =
        line + log::format_prefix(line, sizeof line, lookup ? log::Level::Warn : log::Level::Error);
    at = log::append(at, end, "the ");
    at = log::append(at, end, t_kind);
    at = log::append(at, end, " thread made system call ");
    at = log::append_number(at, end, info->si_syscall);
    at = log::append(at, end,
                     lookup ? ", a file lookup its seccomp filter forbids: it fails with EACCES\n"
                            : ", which its seccomp filter forbids\n");
    if (!lookup || refused < kLookupsReported) log::write_raw(line, static_cast<size_t>(at - line));
    if (lookup) {
        // The call was not made; what the handler leaves in RAX is its result.
        static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RAX] = -EACCES;
        return;
    }
    fatal_exit::exit_now(148);
}

}  // namespace

Result<void> install(const BpfProgram& program, ThreadKind kind) {
    if (program.instructions.empty()) return {};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail_errno("PR_SET_NO_NEW_PRIVS");
    sock_fprog fprog{static_cast<unsigned short>(program.instructions.size()),
                     const_cast<sock_filter*>(program.instructions.data())};
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
        return fail_errno(std::string("installing the ") + thread_kind_name(kind) +
                          " thread's seccomp filter");
    t_kind = thread_kind_name(kind);
    return {};
}

Result<void> install_on_every_thread(const BpfProgram& program, const char* name) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail_errno("PR_SET_NO_NEW_PRIVS");
    sock_fprog fprog{static_cast<unsigned short>(program.instructions.size()),
                     const_cast<sock_filter*>(program.instructions.data())};
    // A positive answer is the id of a thread that could not take the filter.
    const long rc =
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
    if (rc < 0) return fail_errno(std::string("installing the ") + name + " seccomp filter");
    if (rc > 0)
        return fail(std::string("installing the ") + name + " seccomp filter: thread " +
                    std::to_string(rc) + " could not take it");
    t_kind = name;
    return {};
}

uint64_t refused_file_lookups() {
    return g_refused_lookups.load();
}

void install_sigsys_reporter() {
    struct sigaction sa{};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSYS, &sa, nullptr);
}

}  // namespace ember::seccomp
