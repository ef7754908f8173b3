#include "snapshot/store/store_lease.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/store_files.h"

namespace ember::snapshot {

namespace {

// A collection holds a lease exclusively only while it removes it: a few system calls.
constexpr int kLockTries = 200;
constexpr auto kLockPause = std::chrono::milliseconds(5);
// A lease removed or replaced between its open and its lock is opened again, this many times.
constexpr int kTakeTries = 8;
// A lease's temporary file older than this is a dead maker's.
constexpr auto kLeftoverAge = std::chrono::minutes(1);

// Whether `name` in `folder` is still the file open as `fd`.
Result<bool> still_named(int folder, const char* name, int fd) {
    struct stat held{}, named{};
    if (::fstat(fd, &held) != 0) return fail_errno("fstat");
    if (::fstatat(folder, name, &named, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        return fail_errno("fstatat");
    }
    return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

Result<UniqueFd> open_folder(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno(path);
    return fd;
}

// A new lease: the text written and synced under a temporary name, locked, then linked in under
// `name` where no lease is yet. Empty where one is (another restore made it meanwhile).
Result<std::optional<UniqueFd>> make_lease(int folder, const std::string& name,
                                           std::string_view text) {
    const std::string temporary = "." + name + ".tmp-" + random_suffix();
    UniqueFd fd(::openat(folder, temporary.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return fail_errno("its temporary file");
    auto made = [&]() -> Result<bool> {
        EMBER_TRY(
            write_all(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
        if (::fsync(fd.get()) != 0) return fail_errno("fsync");
        if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) return fail_errno("flock");
        if (::linkat(folder, temporary.c_str(), folder, name.c_str(), 0) == 0) return true;
        if (errno == EEXIST) return false;
        return fail_errno("linking it in");
    }();
    ::unlinkat(folder, temporary.c_str(), 0);
    EMBER_TRY(made);
    if (!*made) return std::nullopt;
    return std::optional<UniqueFd>(std::move(fd));
}

// The lease `name` as it is, locked shared and still under its name once locked; empty where it
// went meanwhile (a collection removed it).
Result<std::optional<UniqueFd>> hold_lease(int folder, const std::string& name,
                                           std::string_view text) {
    UniqueFd fd(::openat(folder, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd.valid()) {
        if (errno == ENOENT) return std::nullopt;
        return fail_errno("opening it");
    }
    int locked = -1;
    for (int i = 0; i < kLockTries && locked != 0; ++i) {
        if (i > 0) std::this_thread::sleep_for(kLockPause);
        locked = retry_on_eintr([&] { return ::flock(fd.get(), LOCK_SH | LOCK_NB); });
        if (locked != 0 && errno != EWOULDBLOCK) return fail_errno("flock");
    }
    if (locked != 0) return fail("held exclusively for a second: is a collection stuck?");
    auto named = still_named(folder, name.c_str(), fd.get());
    EMBER_TRY(named);
    if (!*named) return std::nullopt;
    // A host that crashed before its lease was synced may have left it short.
    auto found = read_small(fd.get(), kMaxManifestBytes);
    EMBER_TRY(found);
    if (*found != text) return fail("holds another text than its name says");
    return std::optional<UniqueFd>(std::move(fd));
}

}  // namespace

Result<StoreLease> StoreLease::take(const std::string& root, std::string_view text) {
    const std::string path = root + "/" + kLeaseFolder;
    EMBER_TRY(make_folder(path), "store " + root);
    auto folder = open_folder(path);
    EMBER_TRY(folder, "store " + root);
    const std::string name = manifest_digest(text).hex() + ".json";
    const std::string what = "store " + root + ": " + kLeaseFolder + "/" + name;
    for (int i = 0; i < kTakeTries; ++i) {
        auto held = hold_lease(folder->get(), name, text);
        EMBER_TRY(held, what);
        if (*held) return StoreLease(std::move(**held));
        auto made = make_lease(folder->get(), name, text);
        EMBER_TRY(made, what);
        if (*made) return StoreLease(std::move(**made));
    }
    return fail(what + ": removed each time it was taken");
}

Result<LeaseScan> scan_leases(const std::string& root, std::chrono::system_clock::time_point bound,
                              bool dry_run) {
    LeaseScan scan;
    const std::string path = root + "/" + kLeaseFolder;
    UniqueFd folder(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!folder.valid()) {
        if (errno == ENOENT) return scan;
        return fail_errno("store " + root + ": " + path);
    }
    auto listed =
        list_entries(folder.get(), [&](const char* entry, const struct stat& st) -> Result<void> {
            const std::string_view name = entry;
            if (!S_ISREG(st.st_mode)) return {};
            const auto gone = [&]() -> Result<void> {
                if (!dry_run && ::unlinkat(folder.get(), entry, 0) != 0 && errno != ENOENT)
                    return fail_errno(std::string(kLeaseFolder) + "/" + entry);
                return {};
            };
            if (name.starts_with('.')) {
                // A lease's temporary file: its maker links it in within a few system calls, so
                // one a minute old is a dead maker's whatever the bound.
                if (name.find(".tmp-") == std::string_view::npos ||
                    modified_time(st) >=
                        std::min(bound, std::chrono::system_clock::now() - kLeftoverAge))
                    return {};
                EMBER_TRY(gone());
                ++scan.leftovers;
                return {};
            }
            if (!name.ends_with(".json")) return {};
            // Read and write: NFS takes an exclusive flock only on a file open for writing. Where
            // another user's lease is not this one's to write, a local lock needs only reading.
            constexpr int kFlags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
            UniqueFd fd(::openat(folder.get(), entry, O_RDWR | kFlags));
            if (!fd.valid() && errno == EACCES)
                fd = UniqueFd(::openat(folder.get(), entry, O_RDONLY | kFlags));
            if (!fd.valid()) {
                if (errno == ENOENT) return {};
                return fail_errno(std::string(kLeaseFolder) + "/" + entry);
            }
            if (retry_on_eintr([&] { return ::flock(fd.get(), LOCK_EX | LOCK_NB); }) == 0) {
                // No process holds it: removed while locked, so a restore that opened it before
                // finds it gone once it has its lock, and makes it anew. Only while the name is
                // still this file: another collection may have removed it since it was opened
                // here, and a restore linked a new lease in under the name.
                auto named = still_named(folder.get(), entry, fd.get());
                EMBER_TRY(named, std::string(kLeaseFolder) + "/" + entry);
                if (!*named) return {};
                EMBER_TRY(gone());
                ++scan.stale;
                return {};
            }
            if (errno != EWOULDBLOCK)
                return fail_errno(std::string(kLeaseFolder) + "/" + entry + ": flock");
            auto text = read_small(fd.get(), kMaxManifestBytes);
            EMBER_TRY(text, std::string(kLeaseFolder) + "/" + entry);
            scan.held.push_back({entry, std::move(*text)});
            return {};
        });
    EMBER_TRY(listed, "store " + root + ": " + path);
    return scan;
}

}  // namespace ember::snapshot
