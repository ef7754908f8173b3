#include "core/base/folder_watch.h"

#include <poll.h>
#include <sys/inotify.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace ember {

FolderWatch FolderWatch::of(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string folder =
        slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    FolderWatch w;
    w.fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (w.fd_.valid() &&
        ::inotify_add_watch(w.fd_.get(), folder.c_str(), IN_CREATE | IN_MOVED_TO) < 0)
        w.fd_.reset();
    return w;
}

FolderWatch::Woken FolderWatch::wait(std::chrono::milliseconds timeout, int other_fd) {
    if (!watching()) timeout = std::min(timeout, kUnwatchedPoll);
    std::array<pollfd, 2> fds{{{fd_.get(), POLLIN, 0}, {other_fd, POLLIN, 0}}};
    const int ms = static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, INT32_MAX));
    if (::poll(fds.data(), fds.size(), ms) <= 0) return Woken::Timeout;
    if ((fds[0].revents & POLLIN) == 0) return Woken::OtherFd;
    char events[4096];
    while (::read(fd_.get(), events, sizeof events) > 0) {
    }
    return Woken::Folder;
}

}  // namespace ember
