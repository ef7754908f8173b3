// Wakes a process waiting for a name to appear in a folder: the socket another process links or
// renames into place when it is ready (ember's API socket, ember-uffd's), so that the waiter
// connects as soon as it can instead of polling on a timer. Watch first, then look, then wait:
// nothing made between the look and the wait is missed.
// A folder that is not there yet (a jail's, which the jailer makes after the start) or cannot be
// watched (no inotify instances left) is polled instead, every kUnwatchedPoll.
// The inotify instances are kept for the next watch (kKeptInstances of them), its watch taken out:
// closing one waits for an SRCU grace period, measured at up to 13 ms on a paravirtual KVM host,
// which a restore would pay. A wait lasts kLongestWait at most, so that an event missed (its
// folder replaced under the watch) costs no more than that.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace ember {

inline constexpr std::chrono::milliseconds kUnwatchedPoll{2};
inline constexpr std::chrono::milliseconds kLongestWait{10};
// A small share of a user's inotify instances (128 by default, fs.inotify.max_user_instances).
inline constexpr size_t kKeptInstances = 8;

class FolderWatch {
  public:
    // Watches the folder that holds `path`.
    static FolderWatch of(const std::string& path);
    FolderWatch(FolderWatch&& other) noexcept;
    FolderWatch& operator=(FolderWatch&& other) noexcept;
    FolderWatch(const FolderWatch&) = delete;
    FolderWatch& operator=(const FolderWatch&) = delete;
    ~FolderWatch();

    enum class Woken { Folder, OtherFd, Timeout };
    // Returns once something was made, linked or moved into the folder since the last wait,
    // `other_fd` (a pidfd, say; -1 for none) is readable, or `timeout` passed (kLongestWait at
    // most, kUnwatchedPoll where the folder is not watched). The caller looks again in any case.
    Woken wait(std::chrono::milliseconds timeout, int other_fd = -1);

    bool watching() const { return wd_ >= 0; }

  private:
    FolderWatch() = default;
    int fd_ = -1;  // an inotify instance, this watch's alone until it goes back to the pool
    int wd_ = -1;  // the folder's watch in it; -1: not watched, polled
};

}  // namespace ember
