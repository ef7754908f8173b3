// The files a store and a chunk cache are made of: folders made where missing and listed, and a
// file written
// under a temporary name beside its own and renamed into place, so that a reader sees it whole or
// not at all and a crash leaves only a dot-file behind (.NAME.tmp-RANDOM, removed by its owner).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "core/base/error.h"

namespace ember::snapshot {

Result<void> make_folder(const std::string& path);

// A random number, as text: what makes a temporary name this process's own.
std::string random_suffix();

// A file's modification time; one past 2262, which the clock cannot hold, as the latest it can.
inline std::chrono::system_clock::time_point modified_time(const struct stat& st) {
    constexpr int64_t kLatest = int64_t{9} << 30;  // seconds: about the year 2262
    const auto seconds = std::min<int64_t>(st.st_mtim.tv_sec, kLatest);
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(seconds) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// Calls `each(dir, name, stat)` for every entry of folder `dir` but "." and "..".
template <typename Each>
void for_each_entry(int dir, Each each) {
    const int fd = ::dup(dir);
    DIR* listing = fd < 0 ? nullptr : ::fdopendir(fd);
    if (listing == nullptr) {
        if (fd >= 0) ::close(fd);
        return;
    }
    ::rewinddir(listing);
    while (const dirent* e = ::readdir(listing)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st{};
        if (::fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) each(dir, e->d_name, st);
    }
    ::closedir(listing);
}

// Calls `each(name, stat)` for every entry of folder `dir` but "." and ".." (one gone since it
// was read is passed over) until it fails, or fails where the folder cannot be read whole: for a
// caller that must know every entry, where for_each_entry() passes over what it cannot read.
Result<void> list_entries(int dir,
                          const std::function<Result<void>(const char*, const struct stat&)>& each);

// `bytes` as `name` in the folder `dir`, replacing what was there; `before_rename` sees the written
// file's descriptor first, where given.
Result<void> write_named(int dir, const std::string& name, std::span<const uint8_t> bytes,
                         const std::function<void(int)>& before_rename = {});

}  // namespace ember::snapshot
