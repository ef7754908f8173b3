#include "core/base/fatal_exit.h"

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>

namespace ember::fatal_exit {
namespace {

int g_notify_fd = -1;
char g_socket[108] = {};  // sun_path's size
std::atomic<int> g_tty_fd{-1};
termios g_tty{};
std::atomic<int> g_status{1};
thread_local bool t_vmm_thread = false;

[[noreturn]] void undo_and_exit(int status) {
    if (g_socket[0] != '\0') ::unlink(g_socket);
    if (const int fd = g_tty_fd.load(); fd >= 0) ::tcsetattr(fd, TCSANOW, &g_tty);
    ::_exit(status);
}

}  // namespace

void init() {
    if (g_notify_fd < 0) g_notify_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int notify_fd() {
    return g_notify_fd;
}

void mark_vmm_thread() {
    t_vmm_thread = true;
}

void remember_socket(const std::string& path) {
    if (path.size() < sizeof g_socket) std::memcpy(g_socket, path.c_str(), path.size() + 1);
}

void remember_terminal(int fd, const termios& saved) {
    g_tty = saved;
    g_tty_fd = fd;
}

void forget_terminal() {
    g_tty_fd = -1;
}

void exit_now(int status) {
    if (t_vmm_thread || g_notify_fd < 0) undo_and_exit(status);
    g_status = status;
    const uint64_t one = 1;
    (void)!::write(g_notify_fd, &one, sizeof one);
    // futex is in every thread's filter; nothing wakes this word, so it is a bounded wait.
    static int never = 0;
    timespec left{1, 0};
    const timespec start = [] {
        timespec t{};
        ::clock_gettime(CLOCK_MONOTONIC, &t);
        return t;
    }();
    for (;;) {
        ::syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, &left, nullptr, 0);
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 1) break;
    }
    ::_exit(status);
}

void finish() {
    undo_and_exit(g_status.load());
}

void exit_here(int status) {
    undo_and_exit(status);
}

}  // namespace ember::fatal_exit
