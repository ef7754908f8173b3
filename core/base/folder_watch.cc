#include "core/base/folder_watch.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <utility>

namespace ember {
namespace {

// Instances no watch holds now, without watches: as many as have waited at once, up to
// kKeptInstances. Trivially destructible, so that a watch that ends during the process's exit
// still finds it.
std::mutex g_idle_mutex;
std::array<int, kKeptInstances> g_idle;
size_t g_idle_count = 0;

void drain(int fd) {
    char events[4096];
    while (::read(fd, events, sizeof events) > 0) {
    }
}

int take_instance() {
    {
        std::lock_guard lock(g_idle_mutex);
        if (g_idle_count > 0) {
            const int fd = g_idle[--g_idle_count];
            drain(fd);  // what the earlier watch saw, and its removal
            return fd;
        }
    }
    return ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

}  // namespace

FolderWatch FolderWatch::of(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string folder =
        slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    FolderWatch w;
    w.fd_ = take_instance();
    if (w.fd_ >= 0) w.wd_ = ::inotify_add_watch(w.fd_, folder.c_str(), IN_CREATE | IN_MOVED_TO);
    return w;
}

FolderWatch::FolderWatch(FolderWatch&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), wd_(std::exchange(other.wd_, -1)) {}

FolderWatch& FolderWatch::operator=(FolderWatch&& other) noexcept {
    if (this != &other) {
        std::swap(fd_, other.fd_);
        std::swap(wd_, other.wd_);
    }
    return *this;
}

FolderWatch::~FolderWatch() {
    if (fd_ < 0) return;
    // Taken out (the mark goes on the kernel's own time), so that a kept instance holds no folder
    // and hears nothing from it.
    if (wd_ >= 0) (void)::inotify_rm_watch(fd_, wd_);
    std::lock_guard lock(g_idle_mutex);
    if (g_idle_count < kKeptInstances)
        g_idle[g_idle_count++] = fd_;
    else
        ::close(fd_);  // no room to keep it: closed, at the grace period's cost
}

FolderWatch::Woken FolderWatch::wait(std::chrono::milliseconds timeout, int other_fd) {
    timeout = std::min(timeout, watching() ? kLongestWait : kUnwatchedPoll);
    std::array<pollfd, 2> fds{{{watching() ? fd_ : -1, POLLIN, 0}, {other_fd, POLLIN, 0}}};
    const int ms = static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, INT32_MAX));
    if (::poll(fds.data(), fds.size(), ms) <= 0) return Woken::Timeout;
    if ((fds[0].revents & POLLIN) == 0) return Woken::OtherFd;
    drain(fd_);
    return Woken::Folder;
}

}  // namespace ember
