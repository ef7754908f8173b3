#include "snapshot/store/store_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"

namespace ember::snapshot {

Result<void> make_folder(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno(path);
    return {};
}

std::string random_suffix() {
    thread_local std::mt19937_64 random{std::random_device{}()};
    return std::to_string(random());
}

Result<void> list_entries(
    int dir, const std::function<Result<void>(const char*, const struct stat&)>& each) {
    UniqueFd fd(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("listing a folder");
    DIR* listing = ::fdopendir(fd.get());
    if (listing == nullptr) return fail_errno("listing a folder");
    (void)fd.release();
    Result<void> result;
    for (;;) {
        errno = 0;
        const dirent* e = ::readdir(listing);
        if (e == nullptr) {
            if (errno != 0) result = fail_errno("listing a folder");
            break;
        }
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st{};
        if (::fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;
            result = fail_errno(std::string("listing a folder: ") + e->d_name);
            break;
        }
        result = each(e->d_name, st);
        if (!result) break;
    }
    ::closedir(listing);
    return result;
}

Result<void> write_named(int dir, const std::string& name, std::span<const uint8_t> bytes,
                         const std::function<void(int)>& before_rename) {
    const std::string temporary = "." + name + ".tmp-" + random_suffix();
    UniqueFd fd(::openat(dir, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return fail_errno(name + ": its temporary file");
    auto written = write_all(fd.get(), bytes);
    if (written) {
        if (before_rename) before_rename(fd.get());
        if (::renameat(dir, temporary.c_str(), dir, name.c_str()) == 0) return {};
        written = fail_errno("renaming it into place");
    }
    ::unlinkat(dir, temporary.c_str(), 0);
    return std::unexpected(std::move(written.error()).wrap(name));
}

}  // namespace ember::snapshot
