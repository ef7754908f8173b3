#include "snapshot/store/directory_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

Result<ChunkBytes> DirectoryStore::get(const ChunkId& id, uint64_t length) {
    auto fd = open_file(chunk_path(id), O_RDONLY);
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
    auto fd = open_file(chunk_path(object), O_RDONLY);
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
        if (size == bytes.size() || size == length) return false;
        if (size > 0 && size < length && get(id, length)) return false;
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
    return read_small_file(root_ + "/snapshots/" + std::string(name) + ".json", kMaxManifestBytes);
}

}  // namespace ember::snapshot
