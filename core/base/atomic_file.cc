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
    if (named.st_ino != open.st_ino || named.st_dev != open.st_dev) return false;
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

// Creates a file named by `pattern` (ending in XXXXXX) and takes its flock. A file that a cleaner
// took and removed before this process locked it is made again.
Result<std::pair<std::string, UniqueFd>> create_locked(const std::string& pattern,
                                                       const std::string& target) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::string name = pattern;
        const int raw = ::mkostemp(name.data(), O_CLOEXEC);
        if (raw < 0) return fail_errno(target);
        UniqueFd fd(raw);
        // A file system without flock writes unlocked files, which no cleaner takes (Unknown).
        if (retry_on_eintr([&] { return ::flock(fd.get(), LOCK_EX); }) != 0)
            return std::pair{std::move(name), std::move(fd)};
        struct stat st{};
        if (::fstat(fd.get(), &st) == 0 && st.st_nlink > 0)
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

// Step by step, and what recover_pair() makes of a kill after each:
//   PreviousKept:        .first.ember-prev-T links the first target's file (or .ember-none-T says
//                        it had none): the targets are as before; the leftovers go.
//   SecondNamedForPair:  the second file is .second.ember-pair-T: as before.
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
    const Where fw = where(first.path_), sw = where(second.path_);
    const std::string token = first.temp_.substr(first.temp_.size() - 6);
    const std::string prev = leftover(fw, kPrev, token), none = leftover(fw, kNone, token);
    // linkat rather than link: the VMM thread's seccomp filter allows only the former.
    std::string kept = prev;
    if (::linkat(AT_FDCWD, first.path_.c_str(), AT_FDCWD, prev.c_str(), 0) != 0) {
        if (errno != ENOENT) return fail_errno(first.path_ + ": keeping the previous file");
        kept = none;
        UniqueFd marker(::open(none.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!marker.valid()) return fail_errno(first.path_ + ": marking that it had no file");
    }
    step(PairStep::PreviousKept);
    const std::string pair = leftover(sw, kPair, token);
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

int AtomicFile::recover_pair(const std::string& first_path, const std::string& second_path) {
    const Where fw = where(first_path), sw = where(second_path);
    int fixed = 0;
    for (std::string_view kind : {kPrev, kNone}) {
        for (const auto& token : tokens(fw, leftover_prefix(fw, kind))) {
            const std::string kept = leftover(fw, kind, token);
            const std::string first_temp = leftover(fw, kTmp, token);
            const std::string pair = leftover(sw, kPair, token);
            // The writer's first file is its temporary until placed, the first target after.
            const bool placed = !exists(first_temp);
            const Owner writer = owner_of(placed ? first_path : first_temp);
            if (writer.state != Owner::Dead && !(placed && writer.state == Owner::Absent)) continue;
            const bool first_is_new =
                kind == kPrev ? inode_of(first_path) != inode_of(kept) : placed;
            if (first_is_new && exists(pair)) {
                // Cut off between the renames: the first target's previous file goes back.
                const int undone = kind == kPrev ? ::rename(kept.c_str(), first_path.c_str())
                                                 : ::unlink(first_path.c_str());
                if (undone != 0 && !(kind == kNone && errno == ENOENT)) continue;
                ++fixed;
            }
            for (const auto& left : {kept, first_temp, pair})
                if (::unlink(left.c_str()) == 0) ++fixed;
        }
    }
    fixed += remove_dead(second_path, kPair);
    fixed += remove_dead(first_path, kTmp);
    fixed += remove_dead(second_path, kTmp);
    if (fixed > 0) {
        sync_directory_of(first_path);
        sync_directory_of(second_path);
    }
    return fixed;
}

}  // namespace ember
