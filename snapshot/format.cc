#include "snapshot/format.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "core/base/file_io.h"
#include "core/base/open_file.h"

namespace ember::snapshot {
namespace {

constexpr size_t kHeaderSize = sizeof kMagic + 4 + 4;
constexpr size_t kSectionHeader = 4 + 4 + 8;

// resize + memcpy rather than insert(): GCC 12 at -O3 misreads the insert of a small fixed-size
// object into a vector as an out-of-bounds copy (-Warray-bounds).
void append_bytes(std::vector<uint8_t>& out, const void* bytes, size_t n) {
    size_t at = out.size();
    out.resize(at + n);
    if (n) std::memcpy(out.data() + at, bytes, n);  // an empty payload's data() may be null
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& v) {
    append_bytes(out, &v, sizeof v);
}

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

}  // namespace

uint64_t fnv1a64(std::span<const uint8_t> bytes) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
    return h;
}

void Writer::add(uint32_t id, uint32_t version, std::span<const uint8_t> payload) {
    append(body_, id);
    append(body_, version);
    append(body_, static_cast<uint64_t>(payload.size()));
    append_bytes(body_, payload.data(), payload.size());
    ++count_;
}

std::vector<uint8_t> Writer::finish() const {
    std::vector<uint8_t> file;
    file.reserve(kHeaderSize + body_.size() + 8);
    append_bytes(file, kMagic, sizeof kMagic);
    append(file, format_version_);
    append(file, count_);
    append_bytes(file, body_.data(), body_.size());
    append(file, fnv1a64(file));
    return file;
}

uint64_t closing_checksum(std::span<const uint8_t> file) {
    return file.size() < 8 ? 0 : load<uint64_t>(file.data() + file.size() - 8);
}

Result<Reader> Reader::parse(std::span<const uint8_t> file, std::span<const StateSection> known) {
    if (file.size() < kHeaderSize + 8)
        return fail("snapshot file is truncated (" + std::to_string(file.size()) + " bytes)");
    if (std::memcmp(file.data(), kMagic, sizeof kMagic) != 0)
        return fail("not an ember snapshot file (bad magic)");
    Reader r;
    r.version_ = load<uint32_t>(file.data() + sizeof kMagic);
    if (r.version_ == 0) return fail("snapshot format version 0 is not one ember wrote");
    if (r.version_ > kFormatVersion)
        return fail("snapshot format version " + std::to_string(r.version_) +
                    " is newer than this ember reads (" + std::to_string(kFormatVersion) + ")");
    const auto body = file.first(file.size() - 8);
    if (load<uint64_t>(file.data() + body.size()) != fnv1a64(body))
        return fail("snapshot checksum mismatch: the file is corrupt or truncated");
    const uint32_t count = load<uint32_t>(file.data() + sizeof kMagic + 4);
    size_t pos = kHeaderSize;
    for (uint32_t i = 0; i < count; ++i) {
        if (body.size() - pos < kSectionHeader)
            return fail("snapshot section " + std::to_string(i) + " is truncated");
        uint32_t id = load<uint32_t>(body.data() + pos);
        uint32_t version = load<uint32_t>(body.data() + pos + 4);
        uint64_t length = load<uint64_t>(body.data() + pos + 8);
        pos += kSectionHeader;
        if (length > body.size() - pos)
            return fail("snapshot section " + std::to_string(id) +
                        " runs past the end of the file");
        const auto kind = std::find_if(known.begin(), known.end(), [&](const StateSection& k) {
            return k.id == (id & ~kOptional);
        });
        const bool optional = (id & kOptional) != 0;
        // An optional section of a layout newer than this ember reads is skipped, as one of a
        // kind it does not know.
        const bool understood = kind != known.end() && !(optional && version > kind->version);
        if (!understood && !optional)
            return fail("snapshot has a required section " + std::to_string(id) +
                        " this ember does not know");
        if (understood && (version == 0 || version > kind->version))
            return fail("snapshot " + std::string(kind->name) + " section has version " +
                        std::to_string(version) + "; this ember reads versions 1 to " +
                        std::to_string(kind->version));
        if (understood)
            r.sections_.push_back(Section{id & ~kOptional, version, body.subspan(pos, length),
                                          (id & kOptional) != 0});
        else
            ++r.skipped_;
        pos += length;
    }
    if (pos != body.size()) return fail("snapshot has trailing bytes after its sections");
    return r;
}

std::vector<Section> Reader::all(uint32_t id) const {
    std::vector<Section> out;
    for (const auto& s : sections_)
        if (s.id == id) out.push_back(s);
    return out;
}

Result<Section> Reader::one(uint32_t id) const {
    auto found = all(id);
    if (found.size() != 1)
        return fail("snapshot has " + std::to_string(found.size()) + " sections of kind " +
                    std::to_string(id) + ", expected one");
    return found[0];
}

Result<std::vector<uint8_t>> read_state_file(const std::string& path) {
    auto fd = open_file(path, O_RDONLY);
    EMBER_TRY(fd);
    auto size = file_size(fd->get());
    EMBER_TRY(size);
    if (*size > kMaxStateFileBytes)
        return fail(std::to_string(*size) + " bytes is too large for a snapshot state file");
    std::vector<uint8_t> bytes(*size);
    EMBER_TRY(pread_exact(fd->get(), bytes, 0));
    return bytes;
}

}  // namespace ember::snapshot
