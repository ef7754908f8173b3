#include "snapshot/store/snapshot_view.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string_view>
#include <vector>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"
#include "core/memory/guest_memory.h"
#include "snapshot/store/chunked_memory.h"
#include "snapshot/store/store_files.h"
#include "snapshot/store/store_state.h"

namespace ember::snapshot {
namespace {

constexpr const char* kStateFile = "state";
constexpr const char* kMemoryFile = "memory";
constexpr const char* kWorkingSetFile = "working-set";
constexpr std::array<const char*, 3> kViewFiles = {kStateFile, kMemoryFile, kWorkingSetFile};

// What a view's files in folder `dir` take on the disk.
uint64_t disk_bytes(int dir) {
    uint64_t bytes = 0;
    for (const char* file : kViewFiles) {
        struct stat st{};
        if (::fstatat(dir, file, &st, AT_SYMLINK_NOFOLLOW) == 0)
            bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    return bytes;
}

// The view at views/`name`, where it is whole and was made (or found) this boot; its use renewed.
std::optional<SnapshotView> found(const ChunkCache& cache, int views, const std::string& name) {
    const UniqueFd dir(
        ::openat(views, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!dir.valid()) return std::nullopt;
    const UniqueFd memory(::openat(dir.get(), kMemoryFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st{};
    if (!memory.valid() || ::fstat(memory.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        !cache.checked_this_boot(memory.get()))
        return std::nullopt;
    struct stat state{};
    if (::fstatat(dir.get(), kStateFile, &state, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(state.st_mode))
        return std::nullopt;
    // A view is renamed in whole: it has a working set where its manifest names one.
    struct stat ws{};
    const bool with_working_set =
        ::fstatat(dir.get(), kWorkingSetFile, &ws, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(ws.st_mode);
    // A view's time is its memory file's, renewed once a minute at most, as a chunk's is.
    if (::time(nullptr) - st.st_mtim.tv_sec >= 60) ::futimens(memory.get(), nullptr);
    const std::string path = cache.folder() + "/" + kViewFolder + "/" + name + "/";
    SnapshotView view{path + kStateFile, path + kMemoryFile,
                      with_working_set ? path + kWorkingSetFile : "", false, disk_bytes(dir.get())};
    return view;
}

// The view's files, written into the folder `dir` from chunks through the cache.
Result<void> write_view(int dir, const Manifest& m, const HostDrives& drives, ChunkCache& cache,
                        unsigned fetchers) {
    auto fetched = fetch_file(m, m.state, cache);
    EMBER_TRY(fetched, "the state file");
    auto state = state_for_host(std::move(*fetched), m, drives);
    EMBER_TRY(state);
    {
        const UniqueFd fd(::openat(dir, kStateFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd.valid()) return fail_errno("its state file");
        EMBER_TRY(write_all(fd.get(), state->bytes), "its state file");
    }
    if (!m.working_set.empty()) {
        const UniqueFd fd(
            ::openat(dir, kWorkingSetFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd.valid()) return fail_errno("its working set");
        EMBER_TRY(write_working_set(fd.get(), state->identity, m.working_set), "its working set");
    }
    const UniqueFd memory(::openat(dir, kMemoryFile, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!memory.valid()) return fail_errno("its memory file");
    if (::ftruncate(memory.get(), static_cast<off_t>(m.memory.bytes)) != 0)
        return fail_errno("its memory file");
    // Without the mark no view is ever found made: each load would make its own anew. Asked
    // before the memory is fetched and written, not after. (The mark before the bytes is no
    // promise: the folder is found only once it is renamed into place whole.)
    cache.mark_checked(memory.get());
    if (!cache.checked_this_boot(memory.get()))
        return fail(
            "the cache's folder takes no user xattrs, which a view needs (a mark of the "
            "boot that checked it)");
    ChunkedMemory source(m, cache, fetchers);
    const std::array<PageRun, 1> whole = {
        PageRun{0, (m.memory.bytes + kGuestPageSize - 1) / kGuestPageSize, false}};
    EMBER_TRY(source.deliver(whole,
                             [&](const MemoryExtent& e) -> Result<void> {
                                 if (e.bytes == nullptr) return {};  // a hole
                                 return pwrite_all(memory.get(), {e.bytes, e.length}, e.offset);
                             }),
              "its memory file");
    // Read-only: every clone maps the memory file, and sees a write to it (a merge of a Diff
    // snapshot onto it, say) in each page it has not written itself.
    for (const char* file : kViewFiles)
        if (::fchmodat(dir, file, 0444, 0) != 0 && errno != ENOENT)
            return fail_errno(std::string("its ") + file);
    if (::fchmod(dir, 0755) != 0) return fail_errno("its folder");
    return {};
}

}  // namespace

// A view's folder holds files only (its own, or what another put there).
void remove_view_folder(int views, const std::string& name) {
    const UniqueFd dir(
        ::openat(views, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (dir.valid())
        for_each_entry(dir.get(), [](int at, const char* file, const struct stat&) {
            ::unlinkat(at, file, 0);
        });
    ::unlinkat(views, name.c_str(), AT_REMOVEDIR);
}

std::optional<ViewUse> view_use(int views, const std::string& name) {
    const UniqueFd dir(
        ::openat(views, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st{};
    if (!dir.valid() || ::fstat(dir.get(), &st) != 0) return std::nullopt;
    ViewUse use{st.st_mtim, disk_bytes(dir.get())};
    struct stat memory{};
    if (::fstatat(dir.get(), kMemoryFile, &memory, AT_SYMLINK_NOFOLLOW) == 0)
        use.used = memory.st_mtim;
    return use;
}

bool remove_view(int views, const std::string& name) {
    // Aside first: a reader finds the view whole or not at all.
    const std::string aside = "." + name + ".gone-" + random_suffix();
    if (::renameat(views, name.c_str(), views, aside.c_str()) != 0) return false;
    remove_view_folder(views, aside);
    return true;
}

namespace {

// views/<digest>-<16 hex digits of the SHA-256 of what the state file was made for>: one view for
// each drive root and set of writable drives, whose state file names them. A name of the digest
// alone (a view of an ember before drive roots, whose state is the store's) is never found.
std::string view_name(const ChunkId& digest, const HostDrives& drives) {
    std::string made_for(without_trailing_slashes(drives.root));
    std::vector<std::string> writable = drives.writable;
    std::sort(writable.begin(), writable.end());
    for (const auto& id : writable) made_for.append("\n").append(id);
    const auto hash =
        chunk_id_of({reinterpret_cast<const uint8_t*>(made_for.data()), made_for.size()});
    return digest.hex() + "-" + hash.hex().substr(0, 16);
}

}  // namespace

bool is_view_name(std::string_view name) {
    const auto hex = [](std::string_view s) {
        return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
    };
    if (name.size() == 64) return hex(name);
    return name.size() == 81 && name[64] == '-' && hex(name.substr(0, 64)) && hex(name.substr(65));
}

std::optional<SnapshotView> find_view(const ChunkCache& cache, const ChunkId& digest,
                                      const HostDrives& drives) {
    const std::string views_path = cache.folder() + "/" + kViewFolder;
    const UniqueFd views(
        ::open(views_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!views.valid()) return std::nullopt;
    return found(cache, views.get(), view_name(digest, drives));
}

Result<SnapshotView> open_view(ChunkCache& cache, const Manifest& m, const ChunkId& digest,
                               const HostDrives& drives, unsigned fetchers) {
    const std::string views_path = cache.folder() + "/" + kViewFolder;
    EMBER_TRY(make_folder(views_path), "the cache's views");
    // Not followed, as the cache's eviction does not follow it: a view it could not count would
    // never go.
    const UniqueFd views(
        ::open(views_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!views.valid()) return fail_errno("the cache's views " + views_path);
    const std::string name = view_name(digest, drives);
    if (auto view = found(cache, views.get(), name)) return *view;

    uint64_t stored = 0;
    for (size_t i = 0; i < m.memory.chunks.size(); ++i)
        if (m.memory.chunks[i]) stored += m.chunk_length(m.memory.bytes, i);
    if (stored > cache.max_bytes() / 2)
        return fail("a view of " + std::to_string(stored) +
                    " bytes of memory takes more than half the cache's bound of " +
                    std::to_string(cache.max_bytes()) + " bytes");

    std::string temporary = views_path + "/." + name + ".tmp-XXXXXX";
    if (::mkdtemp(temporary.data()) == nullptr) return fail_errno("a view's temporary folder");
    const std::string made_in = temporary.substr(views_path.size() + 1);
    auto written = [&]() -> Result<void> {
        const UniqueFd dir(::openat(views.get(), made_in.c_str(),
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (!dir.valid()) return fail_errno("a view's temporary folder");
        return write_view(dir.get(), m, drives, cache, fetchers);
    }();
    if (!written) {
        remove_view_folder(views.get(), made_in);
        return std::unexpected(std::move(written.error()).wrap("the view of the snapshot"));
    }
    // Where a view is already there, it is either one another process has just made (taken, and
    // this one dropped) or one of another boot (set aside for this one).
    int err = 0;
    for (int tries = 0; tries < 2; ++tries) {
        const bool renamed =
            ::renameat(views.get(), made_in.c_str(), views.get(), name.c_str()) == 0;
        err = errno;
        if (renamed) {
            auto view = found(cache, views.get(), name);
            if (!view) return fail("the view made at " + views_path + "/" + name + " went at once");
            view->made = true;
            cache.added_beside(view->bytes);
            return *view;
        }
        if (err != EEXIST && err != ENOTEMPTY) break;
        if (auto view = found(cache, views.get(), name)) {
            remove_view_folder(views.get(), made_in);
            return *view;
        }
        remove_view(views.get(), name);
    }
    remove_view_folder(views.get(), made_in);
    return fail_errno("the view " + views_path + "/" + name, err);
}

}  // namespace ember::snapshot
