#include "snapshot/store/directory_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "core/base/at_once.h"
#include "core/base/atomic_file.h"
#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "snapshot/store/chunk_codec.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/store_files.h"

namespace ember::snapshot {

Result<void> check_snapshot_name(std::string_view name) {
    const bool ok = !name.empty() && name.size() <= 200 && name.front() != '.' &&
                    name.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789._-") == std::string_view::npos;
    if (!ok)
        return fail("snapshot name '" + std::string(name.substr(0, 200)) +
                    "': letters, digits, '.', '_' and '-' only, not starting with '.', at most "
                    "200 of them");
    return {};
}

Result<DirectoryStore> DirectoryStore::open(const std::string& root, bool create) {
    if (create) {
        EMBER_TRY(make_folder(root), "store");
        EMBER_TRY(make_folder(root + "/chunks"), "store");
        EMBER_TRY(make_folder(root + "/snapshots"), "store");
    }
    const std::string chunks = root + "/chunks";
    UniqueFd fd(::open(chunks.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("store " + root + ": " + chunks);
    return DirectoryStore(root, std::move(fd));
}

namespace {

// Where a collection puts an object aside to look at once more
// (DirectoryStore::remove_unless_newer).
constexpr std::string_view kAside = ".gc-";

}  // namespace

Result<UniqueFd> DirectoryStore::open_object(const ChunkId& id) const {
    auto fd = open_file(chunk_path(id), O_RDONLY);
    // Set aside by a collection that stopped before it put it back (store_collect.h): still it.
    if (!fd && ::faccessat(chunks_.get(), id.hex().c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0 &&
        errno == ENOENT) {
        if (auto aside = open_file(root_ + "/chunks/" + std::string(kAside) + id.hex(), O_RDONLY))
            return aside;
    }
    return fd;
}

Result<ChunkBytes> DirectoryStore::get(const ChunkId& id, uint64_t length) {
    auto fd = open_object(id);
    EMBER_TRY(fd, "chunk " + id.hex());
    auto size = file_size(fd->get());
    EMBER_TRY(size, "chunk " + id.hex());
    if (*size > length)
        return fail("chunk " + id.hex() + ": " + std::to_string(*size) +
                    " bytes in the store, where the manifest says at most " +
                    std::to_string(length));
    std::vector<uint8_t> stored(*size);
    EMBER_TRY(pread_exact(fd->get(), stored, 0), "chunk " + id.hex());
    auto bytes = decode_chunk(id, length, std::move(stored));
    EMBER_TRY(bytes);
    return std::make_shared<const std::vector<uint8_t>>(std::move(*bytes));
}

Result<std::vector<uint8_t>> DirectoryStore::get_range(const ChunkId& object, uint64_t offset,
                                                       uint64_t length) {
    auto fd = open_object(object);
    EMBER_TRY(fd, "object " + object.hex());
    auto size = file_size(fd->get());
    EMBER_TRY(size, "object " + object.hex());
    if (offset > *size || length > *size - offset)
        return fail("object " + object.hex() + ": " + std::to_string(*size) +
                    " bytes in the store, where a read of " + std::to_string(length) +
                    " bytes at " + std::to_string(offset) + " was asked for");
    std::vector<uint8_t> bytes(length);
    EMBER_TRY(pread_exact(fd->get(), bytes, offset), "object " + object.hex());
    return bytes;
}

Result<bool> DirectoryStore::put(const ChunkId& id, std::span<const uint8_t> bytes,
                                 uint64_t length) {
    // A chunk that a crash before the manifest's sync left short is not one the store holds. One
    // in the other form (pushed as it is before there were frames, or as a frame by another zstd)
    // is, and stays: rewriting it would cost the dedup, and readers from before frames the chunks
    // older snapshots share with this one.
    struct stat st{};
    if (::fstatat(chunks_.get(), id.hex().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode)) {
        const auto size = static_cast<uint64_t>(st.st_size);
        // Made new, else written again: a collection took it in between, or it is another user's
        // whose time this one cannot change.
        if ((size == bytes.size() || size == length ||
             (size > 0 && size < length && get(id, length))) &&
            ::utimensat(chunks_.get(), id.hex().c_str(), nullptr, AT_SYMLINK_NOFOLLOW) == 0)
            return false;
    }
    EMBER_TRY(write_named(chunks_.get(), id.hex(), bytes), "store " + root_ + ": chunk");
    return true;
}

unsigned DirectoryStore::parallel() const {
    return busy_threads();
}

Result<void> DirectoryStore::put_manifest(std::string_view name, std::string_view text) {
    EMBER_TRY(check_snapshot_name(name));
    // The chunks first: a manifest that outlives a crash names only chunks that are whole.
    if (::syncfs(chunks_.get()) != 0) return fail_errno("store " + root_ + ": syncfs");
    auto file = AtomicFile::create(root_ + "/snapshots/" + std::string(name) + ".json");
    EMBER_TRY(file, "store " + root_);
    EMBER_TRY(write_all(file->fd(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}),
              "store " + root_ + ": manifest");
    EMBER_TRY(file->commit(), "store " + root_ + ": manifest");
    return {};
}

Result<std::string> DirectoryStore::manifest(std::string_view name) const {
    EMBER_TRY(check_snapshot_name(name));
    const std::string path = root_ + "/snapshots/" + std::string(name) + ".json";
    auto text = read_small_file(path, kMaxManifestBytes);
    if (!text && ::access(path.c_str(), F_OK) != 0 && errno == ENOENT)
        text.error().kind = ErrorKind::Gone;
    return text;
}

Result<DirectoryStore::Leased> DirectoryStore::leased_manifest(std::string_view name) const {
    // A manifest replaced between the two reads (a push of the same name) is read anew.
    constexpr int kTries = 3;
    for (int i = 0; i < kTries; ++i) {
        auto text = manifest(name);
        EMBER_TRY(text);
        auto lease = StoreLease::take(root_, *text);
        if (!lease) return Leased{std::move(*text), std::nullopt, lease.error().message};
        // Still there as read, with its lease in place (store_lease.h).
        auto again = manifest(name);
        EMBER_TRY(again);
        if (*again == *text) return Leased{std::move(*text), std::move(*lease), {}};
    }
    return fail("snapshot " + std::string(name) + ": its manifest changed each time it was read");
}

Result<LeaseScan> DirectoryStore::leases(std::chrono::system_clock::time_point bound,
                                         bool dry_run) {
    return scan_leases(root_, bound, dry_run);
}

Result<std::vector<std::string>> DirectoryStore::manifest_names() const {
    // A folder of the store that is a link may be another store's too, whose manifests a
    // collection of this one would not read.
    for (const char* link : {"chunks", "snapshots", kLeaseFolder}) {
        struct stat st{};
        if (::lstat((root_ + "/" + link).c_str(), &st) == 0 && S_ISLNK(st.st_mode))
            return fail("store " + root_ + ": " + link +
                        "/ is a link, which other stores may share: not collected");
    }
    const std::string folder = root_ + "/snapshots";
    UniqueFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("store " + root_ + ": " + folder);
    std::vector<std::string> names;
    auto listed = list_entries(fd.get(), [&](const char* entry, const struct stat&) {
        const std::string_view n = entry;
        const std::string_view name = n.substr(0, n.size() - std::min<size_t>(n.size(), 5));
        if (!n.ends_with(".json") || !check_snapshot_name(name)) return Result<void>{};
        // As a restore reads it: through a link. One that leads nowhere names nothing it can read.
        struct stat st{};
        if (::fstatat(fd.get(), entry, &st, 0) != 0) {
            if (errno == ENOENT) return Result<void>{};
            return Result<void>(fail_errno(std::string("snapshots/") + entry));
        }
        if (!S_ISREG(st.st_mode))
            return Result<void>(fail(std::string("snapshots/") + entry + ": not a file"));
        names.emplace_back(name);
        return Result<void>{};
    });
    EMBER_TRY(listed, "store " + root_ + ": " + folder);
    return names;
}

Result<std::vector<StoredObject>> DirectoryStore::objects(
    std::chrono::system_clock::time_point bound, bool dry_run, uint64_t& leftovers) {
    std::vector<StoredObject> objects;
    auto listed = list_entries(chunks_.get(), [&](const char* entry, const struct stat& st) {
        if (!S_ISREG(st.st_mode)) return Result<void>{};
        std::string_view name = entry;
        const bool aside = name.starts_with(kAside);
        if (aside) name.remove_prefix(kAside.size());
        if (auto id = ChunkId::parse(name)) {
            objects.push_back({*id, static_cast<uint64_t>(st.st_size), modified_time(st), aside});
        } else if (name.starts_with('.') && name.find(".tmp-") != std::string_view::npos &&
                   modified_time(st) < bound) {
            if (!dry_run && ::unlinkat(chunks_.get(), entry, 0) != 0 && errno != ENOENT)
                return Result<void>(fail_errno(std::string("chunks/") + entry));
            ++leftovers;
        }
        return Result<void>{};
    });
    EMBER_TRY(listed, "store " + root_);
    return objects;
}

Result<bool> DirectoryStore::remove_unless_newer(const StoredObject& object,
                                                 std::chrono::system_clock::time_point bound) {
    // Aside first: a push that makes it new from now on finds it gone and writes it again, and one
    // that made it new before shows in its time below.
    const std::string name = object.id.hex();
    const std::string aside = std::string(kAside) + name;
    if (!object.aside &&
        ::renameat(chunks_.get(), name.c_str(), chunks_.get(), aside.c_str()) != 0) {
        if (errno == ENOENT) return false;
        return fail_errno("store " + root_ + ": chunks/" + name);
    }
    struct stat st{};
    if (::fstatat(chunks_.get(), aside.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        auto failed = fail_errno("store " + root_ + ": chunks/" + aside);
        (void)put_back(object);  // not known to be old: back where a push looks
        return failed;
    }
    if (modified_time(st) >= bound) {
        EMBER_TRY(put_back({object.id, object.bytes, modified_time(st), true}));
        return false;
    }
    if (::unlinkat(chunks_.get(), aside.c_str(), 0) != 0 && errno != ENOENT)
        return fail_errno("store " + root_ + ": chunks/" + aside);
    return true;
}

Result<void> DirectoryStore::put_back(const StoredObject& object) {
    const std::string name = object.id.hex();
    const std::string aside = std::string(kAside) + name;
    int moved =
        ::renameat2(chunks_.get(), aside.c_str(), chunks_.get(), name.c_str(), RENAME_NOREPLACE);
    if (moved != 0 && (errno == EINVAL || errno == ENOSYS)) {
        // A file system that takes no flags for a rename (NFS): a link fails as the rename
        // would where the name is taken, then the aside name goes.
        moved = ::linkat(chunks_.get(), aside.c_str(), chunks_.get(), name.c_str(), 0);
        if (moved == 0 && ::unlinkat(chunks_.get(), aside.c_str(), 0) != 0 && errno != ENOENT)
            return fail_errno("store " + root_ + ": chunks/" + aside);
    }
    if (moved == 0) return {};
    // A push wrote it again meanwhile: that copy stays.
    if (errno == EEXIST) {
        if (::unlinkat(chunks_.get(), aside.c_str(), 0) == 0 || errno == ENOENT) return {};
    } else if (errno == ENOENT) {
        return {};
    }
    return fail_errno("store " + root_ + ": putting back chunks/" + name);
}

}  // namespace ember::snapshot
