#include "core/base/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "core/base/file_io.h"

namespace ember {
namespace {

constexpr std::string_view kTmp = "tmp", kPrev = "prev", kNone = "none", kPair = "pair";

struct Where {
    std::string dir;   // "" for the current directory, else ending in '/'
    std::string name;  // the target's file name
};

Where where(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return {"", path};
    return {path.substr(0, slash + 1), path.substr(slash + 1)};
}

// ".<name>.ember-<kind>-" beside the target: every left file of that kind starts so.
std::string leftover_prefix(const Where& w, std::string_view kind) {
    return "." + w.name + ".ember-" + std::string(kind) + "-";
}
std::string leftover(const Where& w, std::string_view kind, const std::string& token) {
    return w.dir + leftover_prefix(w, kind) + token;
}
// A commit's own leftover of `kind`: one at a time in a directory, under its lock.
std::string leftover(const Where& w, std::string_view kind) {
    return w.dir + "." + w.name + ".ember-" + std::string(kind);
}

void sync_directory_of(const std::string& path) {
    // A rename is durable only once its directory is.
    const std::string dir = where(path).dir;
    UniqueFd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.valid()) ::fsync(fd.get());
}

bool exists(const std::string& path) {
    struct stat st{};
    return ::lstat(path.c_str(), &st) == 0;
}

ino_t inode_of(const std::string& path) {
    struct stat st{};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Whether the writer of the file at `path` is gone: its flock is free. Dead holds the lock, so
// that no writer can take the file meanwhile; Alive and Unknown (a file system without flock, not
// a regular file) are left alone, as is a file that is not there.
struct Owner {
    enum { Absent, Alive, Unknown, Dead } state = Absent;
    UniqueFd locked;
};
Owner owner_of(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) return {errno == ENOENT ? Owner::Absent : Owner::Unknown, {}};
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {Owner::Unknown, {}};
    if (retry_on_eintr([&] { return ::flock(fd.get(), LOCK_EX | LOCK_NB); }) != 0)
        return {errno == EWOULDBLOCK ? Owner::Alive : Owner::Unknown, {}};
    return {Owner::Dead, std::move(fd)};
}

// Removes the file at `path` if it is still the one `held` locked.
bool remove_held(const std::string& path, const UniqueFd& held) {
    struct stat named{}, open{};
    if (::lstat(path.c_str(), &named) != 0 || ::fstat(held.get(), &open) != 0) return false;
    if (!same_file(named, open)) return false;
    return ::unlink(path.c_str()) == 0;
}

// The tokens of the files named `prefix`<token> in the directory of `w`.
std::vector<std::string> tokens(const Where& w, const std::string& prefix) {
    std::vector<std::string> found;
    DIR* dir = ::opendir(w.dir.empty() ? "." : w.dir.c_str());
    if (dir == nullptr) return found;
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        if (name.size() > prefix.size() && name.starts_with(prefix))
            found.emplace_back(name.substr(prefix.size()));
    }
    ::closedir(dir);
    return found;
}

// Removes every .<name>.ember-<kind>-* beside `path` whose writer is dead.
int remove_dead(const std::string& path, std::string_view kind) {
    const Where w = where(path);
    int removed = 0;
    for (const auto& token : tokens(w, leftover_prefix(w, kind))) {
        const std::string file = leftover(w, kind, token);
        const Owner o = owner_of(file);
        if (o.state == Owner::Dead && remove_held(file, o.locked)) ++removed;
    }
    return removed;
}

// The directory of `path`, flocked: pair commits and recoveries in one directory go one at a time,
// so that a recovery never undoes a live commit's step, nor two recoveries each half of one dead
// commit. Held a moment by each; not waited for more than a second (a holder stalled on its file
// system), after which the caller goes on without it (`locked` false). A file system without
// flock on directories goes without it too.
struct DirectoryLock {
    UniqueFd fd;
    bool locked = false;
    bool busy = false;  // another held it throughout
};
DirectoryLock lock_directory_of(const std::string& path) {
    const std::string dir = where(path).dir;
    DirectoryLock l{
        UniqueFd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
        false};
    if (!l.fd.valid()) return l;
    for (int tries = 0; tries < 200; ++tries) {
        if (::flock(l.fd.get(), LOCK_EX | LOCK_NB) == 0) {
            l.locked = true;
            return l;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) return l;
        ::usleep(5000);
    }
    l.busy = true;
    return l;
}

// Creates a file named by `pattern` (ending in XXXXXX) and takes its flock. A file that a cleaner
// took and removed before this process locked it is made again.
Result<std::pair<std::string, UniqueFd>> create_locked(const std::string& pattern,
                                                       const std::string& target) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::string name = pattern;
        const int raw = ::mkostemp(name.data(), O_CLOEXEC);
        if (raw < 0) return fail_errno(target);
        UniqueFd fd(raw);
        // A cleaner that took the new file first holds its lock a moment, then removes it. A file
        // system without flock writes unlocked files, which no cleaner takes (Unknown).
        int locked = -1;
        for (int tries = 0; tries < 200; ++tries) {
            locked = ::flock(fd.get(), LOCK_EX | LOCK_NB);
            if (locked == 0 || (errno != EWOULDBLOCK && errno != EINTR)) break;
            ::usleep(5000);
        }
        if (locked != 0 && errno != EWOULDBLOCK && errno != EINTR)
            return std::pair{std::move(name), std::move(fd)};
        struct stat st{};
        if (locked == 0 && ::fstat(fd.get(), &st) == 0 && st.st_nlink > 0)
            return std::pair{std::move(name), std::move(fd)};
    }
    return fail(target + ": its temporary files keep being removed by another process");
}

}  // namespace

Result<AtomicFile> AtomicFile::create(const std::string& path) {
    const Where w = where(path);
    if (w.name.empty()) return fail(path + ": names a directory, not a file");
    remove_dead(path, kTmp);
    auto made = create_locked(w.dir + leftover_prefix(w, kTmp) + "XXXXXX", path);
    EMBER_TRY(made);
    return AtomicFile(path, std::move(made->first), std::move(made->second));
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

// Step by step, under the directory's lock, and what recover_pair() makes of a kill after each:
//   PreviousKept:        .<first>.ember-prev links the first target's file (or .ember-none says it
//                        had none): the targets are as before; the leftovers go.
//   SecondNamedForPair:  the second file is .<second>.ember-pair: as before.
//   FirstPlaced:         the first target is the new file, the second the old: the first gets its
//                        previous file back (or goes), and the pair is as before.
//   SecondPlaced:        both new: the previous file's second name goes.
Result<void> AtomicFile::commit_pair(AtomicFile& first, AtomicFile& second,
                                     const std::function<void(PairStep)>& after_step) {
    auto step = [&](PairStep s) {
        if (after_step) after_step(s);
    };
    EMBER_TRY(first.sync());
    EMBER_TRY(second.sync());
    const DirectoryLock held = lock_directory_of(first.path_);
    if (held.busy)
        return fail(first.path_ + ": another process has held its directory's lock for a second " +
                    "(a snapshot being written or put back there); nothing was replaced");
    // A kill's leftovers, put right first: their names are this commit's.
    recover_locked(first.path_, second.path_);
    const Where fw = where(first.path_), sw = where(second.path_);
    const std::string prev = leftover(fw, kPrev), none = leftover(fw, kNone);
    // linkat rather than link: the VMM thread's seccomp filter allows only the former.
    std::string kept = prev;
    if (::linkat(AT_FDCWD, first.path_.c_str(), AT_FDCWD, prev.c_str(), 0) != 0) {
        if (errno != ENOENT) return fail_errno(first.path_ + ": keeping the previous file");
        kept = none;
        UniqueFd marker(::open(none.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!marker.valid()) return fail_errno(first.path_ + ": marking that it had no file");
    }
    step(PairStep::PreviousKept);
    const std::string pair = leftover(sw, kPair);
    if (::rename(second.temp_.c_str(), pair.c_str()) != 0) {
        auto e = fail_errno(second.path_);
        ::unlink(kept.c_str());
        return e;
    }
    second.temp_ = pair;
    step(PairStep::SecondNamedForPair);
    if (auto r = first.rename_over_target(); !r) {
        ::unlink(kept.c_str());
        return r;
    }
    step(PairStep::FirstPlaced);
    auto placed = second.rename_over_target();
    if (!placed) {
        // The new first file is renamed away (or removed) so the previous pair is whole again.
        const int undone = kept == none ? ::unlink(first.path_.c_str())
                                        : ::rename(prev.c_str(), first.path_.c_str());
        if (undone < 0)
            return fail(placed.error().message + "; and " + first.path_ +
                        " could not be put back: " + std::strerror(errno));
        ::unlink(none.c_str());
        return placed;
    }
    step(PairStep::SecondPlaced);
    ::unlink(kept.c_str());
    sync_directory_of(first.path_);
    sync_directory_of(second.path_);
    step(PairStep::Done);
    return {};
}

// With the directory's lock held, no commit is between its steps: what is there is a dead one's.
int AtomicFile::recover_locked(const std::string& first_path, const std::string& second_path) {
    const Where fw = where(first_path), sw = where(second_path);
    const std::string prev = leftover(fw, kPrev), none = leftover(fw, kNone);
    const std::string pair = leftover(sw, kPair);
    int fixed = 0;
    if (exists(prev)) {
        // The first target is the new file once it is not the previous one.
        if (inode_of(first_path) != inode_of(prev) && exists(pair)) {
            if (::rename(prev.c_str(), first_path.c_str()) != 0) return fixed;
            ++fixed;
        }
    } else if (exists(none)) {
        // It had no file: one there now is the new one, if the second never followed.
        if (exists(pair) && ::unlink(first_path.c_str()) == 0) ++fixed;
    } else if (!exists(pair)) {
        return fixed;
    }
    for (const auto& left : {prev, none, pair})
        if (::unlink(left.c_str()) == 0) ++fixed;
    sync_directory_of(first_path);
    sync_directory_of(second_path);
    return fixed;
}

int AtomicFile::recover_pair(const std::string& first_path, const std::string& second_path) {
    const Where fw = where(first_path), sw = where(second_path);
    // Nothing to do, as after every commit that ended: a few lstat()s, no lock.
    if (!exists(leftover(fw, kPrev)) && !exists(leftover(fw, kNone)) &&
        !exists(leftover(sw, kPair)))
        return 0;
    // Not while another holds the lock: its commit or recovery is under way.
    const DirectoryLock held = lock_directory_of(first_path);
    if (held.busy) return 0;
    return recover_locked(first_path, second_path);
}

}  // namespace ember
