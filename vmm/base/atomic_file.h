// A file written whole or not at all: the bytes go to a temporary file beside the target, which
// commit() syncs and renames over it. Until then the target keeps its old contents, for readers and
// for any process that maps it; a failed or abandoned write removes the temporary file and leaves
// the target as it was. A crash leaves at worst a stray ".<name>.ember-tmp-*" beside it.
#pragma once

#include <string>

#include "vmm/base/error.h"
#include "vmm/base/unique_fd.h"

namespace ember {

class AtomicFile {
  public:
    static Result<AtomicFile> create(const std::string& path);
    AtomicFile(AtomicFile&& other) noexcept;
    AtomicFile& operator=(AtomicFile&&) = delete;
    ~AtomicFile();

    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }
    // fsync, rename over the target, fsync the directory.
    Result<void> commit();

  private:
    AtomicFile(std::string path, std::string temp, UniqueFd fd)
        : path_(std::move(path)), temp_(std::move(temp)), fd_(std::move(fd)) {}
    std::string path_;
    std::string temp_;  // empty once committed or moved from
    UniqueFd fd_;
};

}  // namespace ember
