// A file written whole or not at all: the bytes go to a temporary file beside the target, which
// commit() syncs and renames over it. Until then the target keeps its old contents, for readers and
// for any process that maps it; a failed or abandoned write removes the temporary file and leaves
// the target as it was. A crash leaves at worst a stray ".<name>.ember-tmp-*" beside it.
//
// commit_pair() does the same for two files that are only good together (a snapshot's state and
// memory): whatever fails, the previous pair at those paths stays whole. A crash between its two
// renames leaves the first target's previous file beside it as ".<name>.ember-tmp-prev-*".
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

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
    // Both synced, then renamed over their targets in order; if `second`'s rename fails, `first`'s
    // target gets its previous file back (from a hard link kept until both are in place), or goes
    // if there was none. Errors name the target that failed.
    static Result<void> commit_pair(AtomicFile& first, AtomicFile& second);

  private:
    Result<void> sync() const;
    Result<void> rename_over_target();
    AtomicFile(std::string path, std::string temp, UniqueFd fd)
        : path_(std::move(path)), temp_(std::move(temp)), fd_(std::move(fd)) {}
    std::string path_;
    std::string temp_;  // empty once committed or moved from
    UniqueFd fd_;
};

}  // namespace ember
