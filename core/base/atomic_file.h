// A file written whole or not at all: the bytes go to a temporary file beside the target, which
// commit() syncs and renames over it. Until then the target keeps its old contents, for readers and
// for any process that maps it; a failed or abandoned write removes the temporary file and leaves
// the target as it was.
//
// commit_pair() does the same for two files that are only good together (a snapshot's state and
// memory): whatever fails, the previous pair at those paths stays whole.
//
// A process killed while it writes (SIGKILL, a crash) leaves its files beside the targets, up to
// the size of guest memory. The next create() at a target removes what a dead writer left there:
// each writer holds an flock on its files for as long as it lives, so a dead one's are told from a
// live one's, in another process or pid namespace alike. A pair commit goes under its first
// target's directory's flock, one at a time, so recover_pair() (each snapshot create, and each
// load, where it costs three lstat()s when there is nothing to do) finds only a dead commit's
// files, and puts a pair cut off between its two renames back as it was. Left files are named
//   .<name>.ember-tmp-<T>  a file being written (T: its random token);
//   .<name>.ember-prev     the first target's previous file, kept while a pair is renamed in;
//   .<name>.ember-none     the same, where the first target had no previous file;
//   .<name>.ember-pair     the second file of a pair, while it is renamed in.
// Nothing else in the directory is touched.
#pragma once

#include <functional>
#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember {

class AtomicFile {
  public:
    // Removes what dead writers left beside `path` first.
    static Result<AtomicFile> create(const std::string& path);
    AtomicFile(AtomicFile&& other) noexcept;
    AtomicFile& operator=(AtomicFile&&) = delete;
    ~AtomicFile();

    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }
    // fsync, rename over the target, fsync the directory.
    Result<void> commit();

    // The steps of a pair's commit, after each of which `after_step` (tests only) is called, so
    // that a test can end the process there as a kill would.
    enum class PairStep { PreviousKept, SecondNamedForPair, FirstPlaced, SecondPlaced, Done };
    // Both synced, then renamed over their targets in order; if `second`'s rename fails, `first`'s
    // target gets its previous file back (from a hard link kept until both are in place), or goes
    // if there was none. Errors name the target that failed.
    static Result<void> commit_pair(AtomicFile& first, AtomicFile& second,
                                    const std::function<void(PairStep)>& after_step = {});
    // What a killed commit_pair() of files at `first_path` and `second_path` left: a pair cut off
    // between its renames is put back as it was before, and the commit's own leftovers go (its
    // temporary files go at the next create()). A commit under way is waited for a second, then
    // left alone; what cannot be removed (a directory this process may not write) is left too.
    // Returns how many files it removed or put back.
    static int recover_pair(const std::string& first_path, const std::string& second_path);

  private:
    // recover_pair() with the directory's lock already held.
    static int recover_locked(const std::string& first_path, const std::string& second_path);
    Result<void> sync() const;
    Result<void> rename_over_target();
    AtomicFile(std::string path, std::string temp, UniqueFd fd)
        : path_(std::move(path)), temp_(std::move(temp)), fd_(std::move(fd)) {}
    std::string path_;
    std::string temp_;  // empty once committed or moved from
    UniqueFd fd_;       // flocked for as long as it is open
};

}  // namespace ember
