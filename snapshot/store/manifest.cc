#include "snapshot/store/manifest.h"

#include <algorithm>
#include <bit>
#include <span>

#include "core/config/vm_config.h"
#include "core/json/document.h"
#include "snapshot/format.h"

namespace ember::snapshot {

namespace {

// '"name"', built by appending: GCC 12 warns, wrongly, of an overlapping copy in "\"" + string.
std::string in_quotes(std::string_view name) {
    std::string out(1, '"');
    out.append(name).push_back('"');
    return out;
}

// {"bytes": N, "chunks": [...]}, with the fields `first` (e.g. '"id": "x", ') before them.
void append_chunks(std::string& out, const ChunkedFile& file, std::string_view first = {}) {
    out += "{";
    out += first;
    out += "\"bytes\": " + std::to_string(file.bytes) + ", \"chunks\": [";
    for (size_t i = 0; i < file.chunks.size(); ++i) {
        if (i > 0) out += ", ";
        const auto patch = file.patches.find(i);
        if (patch == file.patches.end()) {
            out += file.chunks[i] ? in_quotes(file.chunks[i]->hex()) : "null";
            continue;
        }
        out += "{\"base\": " + in_quotes(file.chunks[i]->hex()) +
               ", \"patch\": " + in_quotes(patch->second.pages.hex()) + ", \"pages\": [";
        for (size_t r = 0; r < patch->second.runs.size(); ++r)
            out += (r > 0 ? ", [" : "[") + std::to_string(patch->second.runs[r].first) + ", " +
                   std::to_string(patch->second.runs[r].second) + "]";
        out += "]}";
    }
    out += "]}";
}

using json::Array;
using json::Object;
using json::Value;

Result<uint64_t> field_u64(const Object& o, std::string_view name) {
    if (auto n = o.find_u64(name)) return *n;
    return fail(in_quotes(name) + " is missing or not a whole number");
}

std::optional<ChunkId> chunk_id(const std::string* hex) {
    if (!hex) return std::nullopt;
    return ChunkId::parse(*hex);
}

// Whether `e` is an array of exactly `out.size()` whole numbers, read into `out`.
bool whole_numbers(const Value& e, std::span<uint64_t> out) {
    const Array* array = e.array();
    if (!array || array->size() != out.size()) return false;
    for (size_t i = 0; i < out.size(); ++i) {
        auto n = (*array)[i].u64();
        if (!n) return false;
        out[i] = *n;
    }
    return true;
}

// A patched chunk's entry, for a chunk of `length` bytes: its base, and runs of whole pages inside
// the chunk, in order and apart.
Result<ChunkPatch> patch_of(const Object& o, uint64_t length, std::optional<ChunkId>& base) {
    ChunkPatch patch;
    base = chunk_id(o.find_string("base"));
    const auto pages = chunk_id(o.find_string("patch"));
    const Array* runs = o.find_array("pages");
    if (!base || !pages || !runs || runs->empty())
        return fail(
            "a patch is not {\"base\": ID, \"patch\": ID, \"pages\": [[FIRST, COUNT], ...]}");
    patch.pages = *pages;
    const uint64_t in_chunk = length / kGuestPageSize;
    uint64_t end = 0;
    for (const Value& element : *runs) {
        uint64_t v[2] = {};
        if (!whole_numbers(element, v) || v[1] == 0 || (!patch.runs.empty() && v[0] <= end) ||
            v[0] >= in_chunk || v[1] > in_chunk - v[0])
            return fail(
                "a patch's pages are not runs [FIRST, COUNT] in order, apart, inside "
                "its chunk of " +
                std::to_string(in_chunk) + " pages");
        end = v[0] + v[1];
        patch.runs.emplace_back(static_cast<uint32_t>(v[0]), static_cast<uint32_t>(v[1]));
    }
    return patch;
}

// `o`'s "bytes" and "chunks", of the file `name`; patched chunks only where `patches`. Its chunks
// are taken from `left`, what the manifest's files may still name.
Result<ChunkedFile> chunks_of(const Object& o, std::string_view name, uint64_t chunk_size,
                              uint64_t most_bytes, uint64_t& left, bool patches = false) {
    ChunkedFile file;
    auto bytes = field_u64(o, "bytes");
    EMBER_TRY(bytes, std::string(name));
    if (*bytes == 0 || *bytes > most_bytes)
        return fail(std::string(name) + ": " + std::to_string(*bytes) + " bytes, where 1 to " +
                    std::to_string(most_bytes) + " are allowed");
    file.bytes = *bytes;
    const Array* chunks = o.find_array("chunks");
    if (!chunks) return fail(std::string(name) + ": \"chunks\" is missing or not an array");
    const uint64_t expected = (file.bytes + chunk_size - 1) / chunk_size;
    if (chunks->size() != expected)
        return fail(std::string(name) + ": " + std::to_string(chunks->size()) + " chunks for " +
                    std::to_string(file.bytes) + " bytes, where chunks of " +
                    std::to_string(chunk_size) + " make " + std::to_string(expected));
    if (expected > left)
        return fail(std::string(name) + ": " + std::to_string(expected) + " chunks, past the " +
                    std::to_string(kMaxManifestChunks) + " a manifest's files may have in all");
    left -= expected;
    file.chunks.reserve(expected);
    for (const Value& element : *chunks) {
        const uint64_t index = file.chunks.size();
        if (element.is_null()) {
            file.chunks.emplace_back();
            continue;
        }
        std::optional<ChunkId> id = chunk_id(element.string());
        const Object* patched = element.object();
        if (!id && patches && patched) {
            const uint64_t length = std::min(chunk_size, file.bytes - index * chunk_size);
            auto patch = patch_of(*patched, length, id);
            EMBER_TRY(patch, std::string(name) + ": chunk " + std::to_string(index));
            file.patches.emplace(index, std::move(*patch));
        }
        if (!id)
            return fail(std::string(name) + ": chunk " + std::to_string(index) +
                        (patches ? " is neither null, 64 lower-case hex digits nor a patch"
                                 : " is neither null nor 64 lower-case hex digits"));
        file.chunks.push_back(id);
    }
    return file;
}

Result<ChunkedFile> chunked_file(const Object& top, std::string_view name, uint64_t chunk_size,
                                 uint64_t most_bytes, uint64_t& left, bool patches = false) {
    const Object* o = top.find_object(name);
    if (!o) return fail(in_quotes(name) + " is missing or not an object");
    return chunks_of(*o, name, chunk_size, most_bytes, left, patches);
}

// The array `name` of at most `most` elements; null where the manifest has none.
Result<const Array*> optional_array(const Object& top, std::string_view name, size_t most) {
    const Value* field = top.find(name);
    if (!field) return nullptr;
    const Array* array = field->array();
    if (!array) return fail(in_quotes(name) + " is not an array");
    if (array->size() > most)
        return fail(std::to_string(array->size()) + " " + std::string(name) +
                    "; a manifest names at most " + std::to_string(most));
    return array;
}

Result<std::vector<StoredDrive>> stored_drives(const Object& top, uint64_t chunk_size,
                                               uint64_t& left) {
    std::vector<StoredDrive> drives;
    auto array = optional_array(top, "drives", kMaxStoredDrives);
    EMBER_TRY(array);
    if (*array == nullptr) return drives;
    for (const Value& element : **array) {
        const std::string which = "drive " + std::to_string(drives.size());
        const Object* o = element.object();
        const std::string* id = o ? o->find_string("id") : nullptr;
        if (!id || !is_valid_id(*id))
            return fail(which + " is not an object with an \"id\" of 1-64 of A-Z, a-z, 0-9 or _");
        for (const auto& d : drives)
            if (d.id == *id) return fail("drive '" + d.id + "' is named twice");
        StoredDrive drive{*id, {}};
        EMBER_TRY(assign(chunks_of(*o, "drive " + drive.id, chunk_size, kMaxStoredDriveBytes, left),
                         drive.image));
        drives.push_back(std::move(drive));
    }
    return drives;
}

Result<std::vector<PageRun>> working_set_runs(const Object& top, uint64_t memory_bytes) {
    std::vector<PageRun> runs;
    const Value* field = top.find("working_set");
    if (!field) return runs;
    const Array* array = field->array();
    if (!array) return fail("\"working_set\" is not an array");
    uint64_t end = 0;
    for (const Value& element : *array) {
        uint64_t v[3] = {};
        const bool ok = whole_numbers(element, v);
        const std::string which = "working set run " + std::to_string(runs.size());
        if (!ok || v[2] > 1) return fail(which + " is not [offset, pages, 0 or 1]");
        if (v[0] % kGuestPageSize != 0 || v[1] == 0 || v[0] < end ||
            v[1] > (memory_bytes - std::min(v[0], memory_bytes)) / kGuestPageSize)
            return fail(which + " (offset " + std::to_string(v[0]) + ", " + std::to_string(v[1]) +
                        " pages) is not whole pages, in order, inside the memory");
        end = v[0] + v[1] * kGuestPageSize;
        runs.push_back({v[0], v[1], v[2] == 1});
    }
    return runs;
}

Result<std::vector<ChunkPack>> chunk_packs(const Object& top, uint64_t chunk_size, uint64_t& left) {
    std::vector<ChunkPack> packs;
    auto array = optional_array(top, "packs", kMaxPacks);
    EMBER_TRY(array);
    if (*array == nullptr) return packs;
    for (const Value& element : **array) {
        const std::string which = "pack " + std::to_string(packs.size());
        const Object* o = element.object();
        const auto id = o ? chunk_id(o->find_string("id")) : std::nullopt;
        const Array* chunks = o ? o->find_array("chunks") : nullptr;
        if (!id || !chunks || chunks->empty())
            return fail(which + " is not {\"id\": ID, \"chunks\": [[ID, LENGTH, STORED], ...]}");
        if (chunks->size() > left)
            return fail(which + ": " + std::to_string(chunks->size()) + " chunks, past the " +
                        std::to_string(kMaxManifestChunks) + " a manifest may name in all");
        left -= chunks->size();
        ChunkPack pack{*id, {}};
        pack.chunks.reserve(chunks->size());
        uint64_t bytes = 0;
        for (const Value& entry : *chunks) {
            const Array* e = entry.array();
            const auto chunk = e && e->size() == 3 ? chunk_id((*e)[0].string()) : std::nullopt;
            const auto length = chunk ? (*e)[1].u64() : std::nullopt;
            const auto stored = length ? (*e)[2].u64() : std::nullopt;
            if (!stored || *length == 0 || *length > chunk_size || *stored == 0 ||
                *stored > *length)
                return fail(which + ": chunk " + std::to_string(pack.chunks.size()) +
                            " is not [ID, LENGTH, STORED] of 1 to " + std::to_string(chunk_size) +
                            " bytes, stored in no more");
            bytes += *stored;
            if (bytes > kMaxPackBytes)
                return fail(which + ": more than the " + std::to_string(kMaxPackBytes) +
                            " bytes a pack may have");
            pack.chunks.push_back({*chunk, *length, *stored, std::nullopt});
        }
        auto sums = optional_array(*o, "sums", pack.chunks.size());
        EMBER_TRY(sums, which);
        if (*sums != nullptr) {
            if ((*sums)->size() != pack.chunks.size())
                return fail(which + ": " + std::to_string((*sums)->size()) + " sums for " +
                            std::to_string(pack.chunks.size()) + " chunks");
            for (size_t i = 0; i < pack.chunks.size(); ++i) {
                PackedChunk& e = pack.chunks[i];
                e.sum = chunk_id((**sums)[i].string());
                // A chunk stored as it is has its name for its sum: a pack cannot name bytes
                // as a chunk's that do not hash to its name.
                if (!e.sum || (e.stored == e.length && *e.sum != e.id))
                    return fail(which + ": sum " + std::to_string(i) +
                                " is not the SHA-256 of its chunk's stored bytes");
            }
        }
        packs.push_back(std::move(pack));
    }
    return packs;
}

}  // namespace

uint64_t ChunkPack::bytes() const {
    return stored_bytes(chunks);
}

uint64_t Manifest::named_chunks() const {
    uint64_t n = state.chunks.size() + memory.chunks.size();
    for (const auto& d : drives) n += d.image.chunks.size();
    for (const auto& p : packs) n += p.chunks.size();
    return n;
}

std::vector<uint64_t> Manifest::working_set_chunks() const {
    return chunks_holding(working_set, chunk_size, memory.chunks.size());
}

std::vector<uint64_t> chunks_holding(std::span<const PageRun> runs, uint64_t chunk_size,
                                     uint64_t count) {
    std::vector<uint64_t> wanted;
    for (const auto& run : runs) {
        if (run.pages == 0) continue;
        const uint64_t first = run.offset / chunk_size;
        const uint64_t last = (run.offset + run.pages * kGuestPageSize - 1) / chunk_size;
        for (uint64_t i = first; i <= last && i < count; ++i)
            if (wanted.empty() || wanted.back() != i) wanted.push_back(i);
    }
    // Runs come written first, then read: a chunk may hold both.
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    return wanted;
}

uint64_t ChunkPatch::page_count() const {
    uint64_t n = 0;
    for (const auto& run : runs) n += run.second;
    return n;
}

uint64_t Manifest::chunk_length(uint64_t bytes, uint64_t index) const {
    const uint64_t start = index * chunk_size;
    return start >= bytes ? 0 : std::min(chunk_size, bytes - start);
}

ChunkId manifest_digest(std::string_view text) {
    return chunk_id_of({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

std::string encode_manifest(const Manifest& m) {
    std::string out = "{\"format\": \"ember-store-manifest\", \"version\": ";
    // The lowest version that says what the manifest needs, so that older embers read what they
    // can and refuse the rest at once, not at a chunk mid-restore.
    out += m.compressed_chunks ? "3" : m.memory.patches.empty() ? "1" : "2";
    out += ", \"hash\": \"sha256\",\n";
    out += " \"chunk_size\": " + std::to_string(m.chunk_size) + ",\n \"state\": ";
    append_chunks(out, m.state);
    out += ",\n \"memory\": ";
    append_chunks(out, m.memory);
    out += ",\n \"working_set\": [";
    for (size_t i = 0; i < m.working_set.size(); ++i) {
        const auto& r = m.working_set[i];
        out += (i > 0 ? ", [" : "[") + std::to_string(r.offset) + ", " + std::to_string(r.pages) +
               ", " + (r.written ? "1]" : "0]");
    }
    out += "],\n \"drives\": [";
    for (size_t i = 0; i < m.drives.size(); ++i) {
        out += i > 0 ? ",\n  " : "\n  ";
        append_chunks(out, m.drives[i].image, "\"id\": " + in_quotes(m.drives[i].id) + ", ");
    }
    out += "]";
    // Only where there are packs: a manifest without is the text an older push wrote.
    if (!m.packs.empty()) {
        out += ",\n \"packs\": [";
        for (size_t p = 0; p < m.packs.size(); ++p) {
            out += p > 0 ? ",\n  {\"id\": " : "\n  {\"id\": ";
            out += in_quotes(m.packs[p].id.hex()) + ", \"chunks\": [";
            const auto& chunks = m.packs[p].chunks;
            for (size_t i = 0; i < chunks.size(); ++i)
                out += (i > 0 ? ", [" : "[") + in_quotes(chunks[i].id.hex()) + ", " +
                       std::to_string(chunks[i].length) + ", " + std::to_string(chunks[i].stored) +
                       "]";
            out += "]";
            // Sums for every chunk or for none.
            if (std::all_of(chunks.begin(), chunks.end(), [](const auto& c) { return c.sum; })) {
                out += ", \"sums\": [";
                for (size_t i = 0; i < chunks.size(); ++i)
                    out += (i > 0 ? ", " : "") + in_quotes(chunks[i].sum->hex());
                out += "]";
            }
            out += "}";
        }
        out += "]";
    }
    out += "}\n";
    return out;
}

Result<Manifest> parse_manifest(std::string_view text) {
    if (text.size() > kMaxManifestBytes)
        return fail("a manifest of " + std::to_string(text.size()) + " bytes, over the " +
                    std::to_string(kMaxManifestBytes) + " allowed");
    auto root = json::parse(text, kMaxManifestTreeBytes);
    if (!root) return fail("not a JSON object: " + root.error().message);
    const Object* top_object = root->object();
    if (!top_object)
        return fail(std::string("not a JSON object: ") + json::type_name(root->type()));
    const Object& top = *top_object;
    auto text_field = [&](std::string_view name) -> std::string_view {
        const std::string* s = top.find_string(name);
        return s ? std::string_view(*s) : std::string_view();
    };
    if (text_field("format") != "ember-store-manifest")
        return fail("not an ember store manifest (\"format\" is not \"ember-store-manifest\")");
    auto version = field_u64(top, "version");
    EMBER_TRY(version);
    if (*version < 1 || *version > 3)
        return fail("manifest version " + std::to_string(*version) +
                    "; this ember reads versions 1 to 3");
    if (text_field("hash") != "sha256") return fail("the manifest's \"hash\" is not \"sha256\"");
    Manifest m;
    m.compressed_chunks = *version >= 3;
    auto chunk_size = field_u64(top, "chunk_size");
    EMBER_TRY(chunk_size);
    if (!std::has_single_bit(*chunk_size) || *chunk_size < kMinChunkSize ||
        *chunk_size > kMaxChunkSize)
        return fail("a chunk size of " + std::to_string(*chunk_size) +
                    " bytes; it is a power of two from 4 KiB to 4 MiB");
    m.chunk_size = *chunk_size;
    uint64_t left = kMaxManifestChunks;
    EMBER_TRY(assign(chunked_file(top, "state", m.chunk_size, kMaxStateFileBytes, left), m.state));
    for (const auto& c : m.state.chunks)
        if (!c) return fail("state: a chunk is null; only memory has zero chunks");
    EMBER_TRY(assign(
        chunked_file(top, "memory", m.chunk_size, kMaxStoredMemoryBytes, left, *version >= 2),
        m.memory));
    if (m.memory.bytes % kGuestPageSize != 0)
        return fail("memory: " + std::to_string(m.memory.bytes) + " bytes, not whole pages");
    EMBER_TRY(assign(working_set_runs(top, m.memory.bytes), m.working_set));
    EMBER_TRY(assign(stored_drives(top, m.chunk_size, left), m.drives));
    EMBER_TRY(assign(chunk_packs(top, m.chunk_size, left), m.packs));
    return m;
}

}  // namespace ember::snapshot
