#include "core/base/atomic_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace ember {
namespace {

std::string directory_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// ".<name>.ember-tmp-<tag>XXXXXX" beside `path`, for mkostemp; empty if `path` names no file.
std::string temp_pattern(const std::string& path, const char* tag) {
    auto slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name.empty()) return {};
    return (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "." + name +
           ".ember-tmp-" + tag + "XXXXXX";
}

void sync_directory_of(const std::string& path) {
    // A rename is durable only once its directory is.
    UniqueFd dir(::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.valid()) ::fsync(dir.get());
}

// A second name for the file at `path`, beside it, so that it outlives a rename over `path`; empty
// when there is no file there.
Result<std::string> keep_previous(const std::string& path) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::string name = temp_pattern(path, "prev-");
        int fd = ::mkostemp(name.data(), O_CLOEXEC);
        if (fd < 0) return fail_errno(path);
        ::close(fd);
        ::unlink(name.c_str());
        // linkat rather than link: the VMM thread's seccomp filter allows only the former.
        if (::linkat(AT_FDCWD, path.c_str(), AT_FDCWD, name.c_str(), 0) == 0) return name;
        if (errno == ENOENT) return std::string();
        if (errno != EEXIST) return fail_errno(path + ": keeping the previous file");
    }
    return fail(path + ": no free name to keep the previous file under");
}

}  // namespace

Result<AtomicFile> AtomicFile::create(const std::string& path) {
    std::string temp = temp_pattern(path, "");
    if (temp.empty()) return fail(path + ": names a directory, not a file");
    int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0) return fail_errno(path);
    return AtomicFile(path, std::move(temp), UniqueFd(fd));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_(std::exchange(other.temp_, {})),
      fd_(std::move(other.fd_)) {}

AtomicFile::~AtomicFile() {
    if (!temp_.empty()) ::unlink(temp_.c_str());
}

Result<void> AtomicFile::sync() const {
    if (temp_.empty()) return fail(path_ + ": already committed");
    if (::fsync(fd_.get()) < 0) return fail_errno(path_);
    return {};
}

Result<void> AtomicFile::rename_over_target() {
    if (::rename(temp_.c_str(), path_.c_str()) < 0) return fail_errno(path_);
    temp_.clear();
    return {};
}

Result<void> AtomicFile::commit() {
    EMBER_TRY(sync());
    EMBER_TRY(rename_over_target());
    sync_directory_of(path_);
    return {};
}

Result<void> AtomicFile::commit_pair(AtomicFile& first, AtomicFile& second) {
    EMBER_TRY(first.sync());
    EMBER_TRY(second.sync());
    auto previous = keep_previous(first.path_);
    EMBER_TRY(previous);
    if (auto r = first.rename_over_target(); !r) {
        if (!previous->empty()) ::unlink(previous->c_str());
        return r;
    }
    auto placed = second.rename_over_target();
    if (!placed) {
        // The new first file is renamed away (or removed) so the previous pair is whole again.
        const int undone = previous->empty() ? ::unlink(first.path_.c_str())
                                             : ::rename(previous->c_str(), first.path_.c_str());
        if (undone < 0)
            return fail(placed.error().message + "; and " + first.path_ +
                        " could not be put back: " + std::strerror(errno));
    } else if (!previous->empty()) {
        ::unlink(previous->c_str());
    }
    sync_directory_of(first.path_);
    sync_directory_of(second.path_);
    return placed;
}

}  // namespace ember
