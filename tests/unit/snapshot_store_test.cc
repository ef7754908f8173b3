#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "snapshot/store/chunk_cache.h"
#include "snapshot/store/chunk_codec.h"
#include "snapshot/store/chunk_id.h"
#include "snapshot/store/chunked_image.h"
#include "snapshot/store/chunked_memory.h"
#include "snapshot/store/directory_store.h"
#include "snapshot/store/fetcher_store.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/manifest_url.h"
#include "snapshot/store/push.h"
#include "snapshot/store/snapshot_view.h"
#include "tests/support/ember_process.h"

namespace ember::snapshot {
namespace {

std::vector<uint8_t> bytes_of(std::string_view s) {
    return {s.begin(), s.end()};
}

TEST(SnapshotStore, AChunkIsNamedByTheSha256OfItsBytes) {
    // FIPS 180-2's example.
    EXPECT_EQ(chunk_id_of(bytes_of("abc")).hex(),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const auto id = ChunkId::parse(chunk_id_of(bytes_of("abc")).hex());
    ASSERT_TRUE(id);
    EXPECT_EQ(*id, chunk_id_of(bytes_of("abc")));
    EXPECT_FALSE(
        ChunkId::parse("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    EXPECT_FALSE(ChunkId::parse("ba7816bf"));
    EXPECT_FALSE(ChunkId::parse(std::string(63, 'a') + "g"));
}

Manifest sample() {
    Manifest m;
    m.chunk_size = 16384;
    m.state = {20000, {chunk_id_of(bytes_of("s0")), chunk_id_of(bytes_of("s1"))}};
    m.memory = {
        65536,
        {chunk_id_of(bytes_of("m0")), std::nullopt, std::nullopt, chunk_id_of(bytes_of("m0"))}};
    m.working_set = {{0, 2, true}, {49152, 4, false}};
    m.drives = {
        {"rootfs",
         {40000, {chunk_id_of(bytes_of("d0")), std::nullopt, chunk_id_of(bytes_of("d2"))}}}};
    return m;
}

TEST(SnapshotStore, AManifestReadsBackAsItWasWritten) {
    const Manifest m = sample();
    auto back = parse_manifest(encode_manifest(m));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, m);
    EXPECT_EQ(back->chunk_length(20000, 1), 20000u - 16384u);
}

TEST(SnapshotStore, AManifestThatARestoreCouldNotTrustIsRefusedWithItsReason) {
    const std::string good = encode_manifest(sample());
    auto with = [&](std::string_view from, std::string_view to) {
        std::string s = good;
        const size_t at = s.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        return s.replace(at, from.size(), to);
    };
    const std::pair<std::string, std::string> cases[] = {
        {with("\"chunk_size\": 16384", "\"chunk_size\": 12288"), "power of two"},
        {with("\"chunk_size\": 16384", "\"chunk_size\": 2048"), "power of two"},
        {with("\"version\": 1", "\"version\": 4"), "version 4"},
        {with("\"sha256\"", "\"md5\""), "\"hash\""},
        {with("\"bytes\": 65536", "\"bytes\": 81920"), "chunks of 16384 make 5"},
        {with("\"bytes\": 65536", "\"bytes\": 65000"), "not whole pages"},
        {with("\"bytes\": 20000", "\"bytes\": 0"), "1 to"},
        {with("null, null", "null, \"zz\""), "neither null nor"},
        {with("\"chunks\": [\"", "\"chunks\": [null, \""), "3 chunks for 20000 bytes"},
        {with(chunk_id_of(bytes_of("s0")).hex().insert(0, 1, '"').append(1, '"'), "null"),
         "only memory has zero chunks"},
        {with("[49152, 4, 0]", "[49152, 5, 0]"), "inside the memory"},
        {with("[49152, 4, 0]", "[100, 1, 0]"), "whole pages"},
        {with("[[0, 2, 1], [49152, 4, 0]]", "[[49152, 4, 0], [0, 2, 1]]"), "in order"},
        {with("[49152, 4, 0]", "[49152, 4, 2]"), "0 or 1"},
        {with("\"id\": \"rootfs\"", "\"id\": \"root fs\""), "an \"id\" of 1-64"},
        {with("\"bytes\": 40000", "\"bytes\": 50000"), "drive rootfs: 3 chunks"},
        {with("\"drives\": [",
              "\"drives\": [{\"id\": \"rootfs\", \"bytes\": 1, \"chunks\": [null]},"),
         "drive 'rootfs' is named twice"},
        {with("\"drives\": [", "\"drives\": {\"x\": 1}, \"ignored\": ["),
         "\"drives\" is not an array"},
        {"[1, 2]", "not a JSON object"},
        {"{\"format\": \"other\"}", "not an ember store manifest"},
    };
    for (const auto& [text, reason] : cases) {
        auto m = parse_manifest(text);
        ASSERT_FALSE(m) << reason;
        EXPECT_NE(m.error().message.find(reason), std::string::npos)
            << m.error().message << " (wanted: " << reason << ")";
    }
}

// A manifest's packs read back as written; one that would make a restore read past a chunk's
// bound, or a pack past its own, is refused; a manifest without packs says nothing of them, as an
// older push's text did.
TEST(SnapshotStore, AManifestsPacksReadBackAndOnesPastTheirBoundsAreRefused) {
    Manifest m = sample();
    EXPECT_EQ(encode_manifest(m).find("packs"), std::string::npos);
    const ChunkId a = chunk_id_of(bytes_of("a")), b = chunk_id_of(bytes_of("b"));
    // Pack 0 without sums, as push wrote them before it summed; pack 1 with them.
    m.packs.push_back({chunk_id_of(bytes_of("pack 0")),
                       {{a, 16384, 900, std::nullopt}, {b, 4096, 4096, std::nullopt}}});
    const ChunkId frame = chunk_id_of(bytes_of("a's frame"));
    m.packs.push_back({chunk_id_of(bytes_of("pack 1")), {{b, 20, 20, b}, {a, 16384, 900, frame}}});
    const std::string good = encode_manifest(m);
    EXPECT_EQ(good.find("\"sums\""), good.rfind("\"sums\"")) << "pack 0 has none";
    auto back = parse_manifest(good);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, m);
    EXPECT_EQ(back->packs[0].bytes(), 4996u);
    EXPECT_NE(good.find("\"version\": 1"), std::string::npos) << "a reader without packs reads it";

    auto with = [&](std::string_view from, std::string_view to) {
        std::string s = good;
        const size_t at = s.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        return s.replace(at, from.size(), to);
    };
    const std::string many = [&] {
        // 17 entries of 4 MiB stored as they are: past a pack's 64 MiB.
        Manifest big = m;
        big.chunk_size = uint64_t{4} << 20;
        big.state.chunks.resize(1);
        big.memory = {uint64_t{4} << 20, {std::nullopt}};
        big.drives.clear();
        big.working_set.clear();
        big.packs = {{a, std::vector<PackedChunk>(
                             17, {b, uint64_t{4} << 20, uint64_t{4} << 20, std::nullopt})}};
        return encode_manifest(big);
    }();
    const std::pair<std::string, std::string> cases[] = {
        {with(", 900]", ", 16385]"), "stored in no more"},
        {with("16384, 900", "32768, 900"), "of 1 to 16384 bytes"},
        {with(", 4096, 4096]", ", 0, 0]"), "pack 0: chunk 1 is not"},
        {with("\"packs\": [", "\"packs\": {\"x\": 1}, \"ignored\": ["), "\"packs\" is not"},
        {with("{\"id\": \"" + chunk_id_of(bytes_of("pack 1")).hex() + "\", \"chunks\": [",
              "{\"id\": \"" + chunk_id_of(bytes_of("pack 1")).hex() +
                  "\", \"chunks\": [], \"x\": ["),
         "pack 1 is not"},
        {many, "more than the 67108864 bytes a pack may have"},
        {with("\"sums\": [\"" + b.hex() + "\", ", "\"sums\": ["), "1 sums for 2 chunks"},
        {with("\"sums\": [\"" + b.hex(), "\"sums\": [\"" + frame.hex()),
         "pack 1: sum 0 is not the SHA-256"},
        {with("\"" + frame.hex() + "\"]", "\"x\"]"), "pack 1: sum 1 is not"},
        {with("\"sums\": [", "\"sums\": {\"x\": 1}, \"y\": ["), "pack 1: \"sums\" is not"},
    };
    for (const auto& [text, reason] : cases) {
        auto refused = parse_manifest(text);
        ASSERT_FALSE(refused) << reason;
        EXPECT_NE(refused.error().message.find(reason), std::string::npos)
            << refused.error().message << " (wanted: " << reason << ")";
    }
}

// sample() with memory's chunk 3 patched onto chunk 0's bytes: pages 1 and 3 its own.
Manifest patched_sample() {
    Manifest m = sample();
    m.memory.patches[3] = {chunk_id_of(bytes_of("p3")), {{1, 1}, {3, 1}}};
    return m;
}

TEST(SnapshotStore, APatchedChunkReadsBackAndOnlyMemoryInVersion2HasOne) {
    const Manifest m = patched_sample();
    const std::string good = encode_manifest(m);
    EXPECT_NE(good.find("\"version\": 2"), std::string::npos) << good;
    EXPECT_NE(encode_manifest(sample()).find("\"version\": 1"), std::string::npos)
        << "a manifest without patches stays readable by an ember that reads version 1";
    auto back = parse_manifest(good);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, m);
    EXPECT_EQ(back->memory.patches.at(3).page_count(), 2u);
    // Chunks that may be frames: version 3, patched or not, which an ember from before frames
    // refuses at once.
    for (Manifest c : {sample(), patched_sample()}) {
        c.compressed_chunks = true;
        const std::string text = encode_manifest(c);
        EXPECT_NE(text.find("\"version\": 3"), std::string::npos) << text;
        auto read = parse_manifest(text);
        ASSERT_TRUE(read) << read.error().message;
        EXPECT_EQ(*read, c);
    }

    auto with = [&](std::string_view from, std::string_view to) {
        std::string s = good;
        const size_t at = s.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        return s.replace(at, from.size(), to);
    };
    const std::string patch = "\"pages\": [[1, 1], [3, 1]]";
    const std::string d0 = chunk_id_of(bytes_of("d0")).hex();
    const auto in_quotes = [](const std::string& s) { return "\"" + s + "\""; };
    const std::pair<std::string, std::string> cases[] = {
        {with("\"version\": 2", "\"version\": 1"), "neither null nor 64"},
        {with(patch, "\"pages\": [[3, 1], [1, 1]]"), "in order, apart"},
        {with(patch, "\"pages\": [[1, 1], [2, 1]]"), "in order, apart"},
        {with(patch, "\"pages\": [[1, 4]]"), "inside its chunk of 4 pages"},
        {with(patch, "\"pages\": [[1, 0]]"), "[FIRST, COUNT]"},
        {with(patch, "\"pages\": []"), "not {\"base\": ID"},
        {with("\"base\": \"", "\"base\": \"x"), "not {\"base\": ID"},
        {with(in_quotes(d0), "{\"base\": " + in_quotes(d0) + ", \"patch\": " + in_quotes(d0) +
                                 ", \"pages\": [[0, 1]]}"),
         "drive rootfs: chunk 0 is neither null nor 64"},
    };
    for (const auto& [text, reason] : cases) {
        auto parsed = parse_manifest(text);
        ASSERT_FALSE(parsed) << reason;
        EXPECT_NE(parsed.error().message.find(reason), std::string::npos)
            << parsed.error().message << " (wanted: " << reason << ")";
    }
}

TEST(SnapshotStore, AManifestNamesAtMostSixteenDrivesAndOneWithoutAnyHasNone) {
    Manifest m = sample();
    for (int i = 0; i < 16; ++i) {
        std::string id = "d";  // appended: GCC 12 warns, wrongly, of an overlap in "d" + string
        id += std::to_string(i);
        m.drives.push_back({id, {1, {std::nullopt}}});
    }
    auto many = parse_manifest(encode_manifest(m));
    ASSERT_FALSE(many);
    EXPECT_NE(many.error().message.find("at most 16"), std::string::npos) << many.error().message;
    const std::string all = encode_manifest(sample());
    const std::string none = all.substr(0, all.find(",\n \"drives\"")) + "}";
    auto without = parse_manifest(none);
    ASSERT_TRUE(without) << without.error().message << "\n" << none;
    EXPECT_TRUE(without->drives.empty());
}

// A manifest names at most kMaxManifestChunks chunks in all: 8 GiB of memory in 4 KiB chunks of
// zeros, with the state's one, is one past, and refused with what it names (a store's manifest of
// 64 GiB in nulls took 1.7 GiB to read); one fewer of memory is read.
TEST(SnapshotStore, AManifestOfMoreChunksThanAnyRestoreTakesIsRefused) {
    Manifest m;
    m.chunk_size = 4096;
    m.state = {100, {chunk_id_of(bytes_of("s0"))}};
    m.memory.bytes = kMaxManifestChunks * 4096;
    m.memory.chunks.assign(kMaxManifestChunks, std::nullopt);
    auto refused = parse_manifest(encode_manifest(m));
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("memory: 2097152 chunks, past the 2097152"),
              std::string::npos)
        << refused.error().message;
    m.memory.bytes -= 4096;
    m.memory.chunks.pop_back();
    auto read = parse_manifest(encode_manifest(m));
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->memory.chunks.size(), kMaxManifestChunks - 1);
}

TEST(SnapshotStore, AManifestUrlNamesAFileStoreAndASnapshotInIt) {
    auto u = parse_manifest_url("file:///srv/store/snapshots/python-3.11.json");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->root, "/srv/store");
    EXPECT_EQ(u->name, "python-3.11");
    auto web = parse_manifest_url("https://cdn.example:8443/fleet/snapshots/fn.json");
    ASSERT_TRUE(web) << web.error().message;
    EXPECT_TRUE(web->remote);
    EXPECT_EQ(web->root, "https://cdn.example:8443/fleet");
    EXPECT_EQ(web->name, "fn");
    EXPECT_FALSE(parse_manifest_url("http://h/snapshots/fn.json?x=1"));
    auto s3 = parse_manifest_url("s3://fleet-snapshots/python/snapshots/a.json");
    ASSERT_TRUE(s3) << s3.error().message;
    EXPECT_TRUE(s3->remote);
    EXPECT_EQ(s3->root, "s3://fleet-snapshots/python");
    auto gs = parse_manifest_url("gs://bucket/snapshots/a.json");
    ASSERT_FALSE(gs);
    EXPECT_NE(gs.error().message.find("'gs' is not one this ember reads"), std::string::npos);
    for (const char* bad :
         {"/srv/store/snapshots/a.json", "file://srv/snapshots/a.json", "file:///srv/store/a.json",
          "file:///srv/snapshots/.a.json", "file:///srv/snapshots/a%2F.json",
          "file:///srv/snapshots/a.txt", "file:///srv/snapshots/../a.json"})
        EXPECT_FALSE(parse_manifest_url(bad)) << bad;
}

TEST(SnapshotStore, ADirectoryStoreKeepsAChunkOnceAndHandsBackOnlyWhatItsNameSays) {
    testing::TempDir dir;
    const std::string root = dir.path() + "/store";
    auto store = DirectoryStore::open(root, true);
    ASSERT_TRUE(store) << store.error().message;
    const auto bytes = bytes_of("the bytes of a chunk");
    const ChunkId id = chunk_id_of(bytes);
    auto stored = store->put(id, bytes, bytes.size());
    ASSERT_TRUE(stored) << stored.error().message;
    EXPECT_TRUE(*stored);
    auto again = store->put(id, bytes, bytes.size());
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again) << "a chunk is stored once";
    auto got = store->get(id, bytes.size());
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(**got, bytes);

    // Shorter than the manifest says: a zstd frame, which these bytes are not.
    auto short_read = store->get(id, bytes.size() + 1);
    ASSERT_FALSE(short_read);
    EXPECT_NE(short_read.error().message.find("is corrupt: its 20 stored bytes are no zstd frame"),
              std::string::npos)
        << short_read.error().message;
    auto long_read = store->get(id, bytes.size() - 1);
    ASSERT_FALSE(long_read);
    EXPECT_NE(long_read.error().message.find("where the manifest says at most 19"),
              std::string::npos)
        << long_read.error().message;

    // One byte changed in the store: the chunk is refused, named.
    std::fstream f(root + "/chunks/" + id.hex(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('X');
    f.close();
    auto corrupt = store->get(id, bytes.size());
    ASSERT_FALSE(corrupt);
    EXPECT_NE(corrupt.error().message.find("chunk " + id.hex() + " is corrupt"), std::string::npos)
        << corrupt.error().message;

    auto missing = store->get(chunk_id_of(bytes_of("never stored")), 12);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);

    ASSERT_TRUE(store->put_manifest("fn", "{}"));
    auto manifest = store->manifest("fn");
    ASSERT_TRUE(manifest);
    EXPECT_EQ(*manifest, "{}");
    EXPECT_FALSE(store->put_manifest("../fn", "{}"));
    EXPECT_FALSE(DirectoryStore::open(dir.path() + "/nothing", false));
}

// A chunk as a memory page often is: a little data, the rest zeros.
std::vector<uint8_t> sparse_chunk(size_t length, uint8_t seed) {
    std::vector<uint8_t> bytes(length, 0);
    for (size_t i = 0; i < length; i += 4096) bytes[i] = static_cast<uint8_t>(seed + i / 4096);
    return bytes;
}

std::vector<uint8_t> random_chunk(size_t length) {
    std::vector<uint8_t> bytes(length);
    uint64_t x = 0x9e3779b97f4a7c15;
    for (auto& b : bytes) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b = static_cast<uint8_t>(x);
    }
    return bytes;
}

TEST(ChunkCodec, CompressesWhereItSavesAndEveryStoreReadsBothForms) {
    const auto sparse = sparse_chunk(131072, 1);
    const auto frame = compress_chunk(sparse, kDefaultCompressionLevel);
    ASSERT_TRUE(frame);
    EXPECT_LT(frame->size(), sparse.size() / 8);
    EXPECT_FALSE(compress_chunk(sparse, 0)) << "level 0 compresses nothing";
    EXPECT_FALSE(compress_chunk(random_chunk(131072), kDefaultCompressionLevel))
        << "bytes that do not shrink by an eighth are stored as they are";

    const ChunkId id = chunk_id_of(sparse);
    auto decoded = decode_chunk(id, sparse.size(), *frame);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, sparse);
    auto raw = decode_chunk(id, sparse.size(), sparse);
    ASSERT_TRUE(raw) << raw.error().message;
    EXPECT_EQ(*raw, sparse);

    // A folder store written by a push holds the frame, and hands back the chunk.
    testing::TempDir dir;
    auto store = DirectoryStore::open(dir.path() + "/store", true);
    ASSERT_TRUE(store) << store.error().message;
    auto put = store->put(id, *frame, sparse.size());
    ASSERT_TRUE(put) << put.error().message;
    EXPECT_TRUE(*put);
    auto got = store->get(id, sparse.size());
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(**got, sparse);

    // A chunk the store holds in the other form is held: neither rewritten nor counted as stored.
    const std::string path = dir.path() + "/store/chunks/" + id.hex();
    for (const auto& [held, offered] :
         {std::pair{std::span<const uint8_t>(sparse), std::span<const uint8_t>(*frame)},
          std::pair{std::span<const uint8_t>(*frame), std::span<const uint8_t>(sparse)}}) {
        std::filesystem::remove(path);
        ASSERT_TRUE(store->put(id, held, sparse.size()));
        auto again = store->put(id, offered, sparse.size());
        ASSERT_TRUE(again) << again.error().message;
        EXPECT_FALSE(*again);
        EXPECT_EQ(std::filesystem::file_size(path), held.size());
    }
    // As is a frame another zstd made (here: another level), once it reads back as the chunk.
    const auto other_level = compress_chunk(sparse, 19);
    ASSERT_TRUE(other_level);
    ASSERT_NE(other_level->size(), frame->size());
    std::filesystem::remove(path);
    ASSERT_TRUE(store->put(id, *other_level, sparse.size()));
    auto kept = store->put(id, *frame, sparse.size());
    ASSERT_TRUE(kept);
    EXPECT_FALSE(*kept);
    // But not a short file that is no frame of it (a crash's): that is written again.
    {
        std::ofstream(path, std::ios::binary | std::ios::trunc) << "torn";
    }
    auto rewritten = store->put(id, *frame, sparse.size());
    ASSERT_TRUE(rewritten);
    EXPECT_TRUE(*rewritten);
    EXPECT_EQ(std::filesystem::file_size(path), frame->size());
}

TEST(ChunkCodec, AFrameIsDecompressedIntoTheChunksLengthAndCheckedNeverTrusted) {
    const auto sparse = sparse_chunk(131072, 1);
    const ChunkId id = chunk_id_of(sparse);
    // A frame of other bytes of the same length: decompressed, then refused by the hash.
    const auto other = compress_chunk(sparse_chunk(131072, 2), 3);
    ASSERT_TRUE(other);
    auto swapped = decode_chunk(id, sparse.size(), *other);
    ASSERT_FALSE(swapped);
    EXPECT_NE(swapped.error().message.find("is corrupt: its bytes hash to"), std::string::npos)
        << swapped.error().message;
    // A frame that holds more than the chunk (a small frame of 16 MiB of zeros): no more than the
    // chunk's length is ever made.
    const std::vector<uint8_t> zeros(16 << 20, 0);
    const auto bomb = compress_chunk(zeros, 3);
    ASSERT_TRUE(bomb);
    ASSERT_LT(bomb->size(), sparse.size());
    auto burst = decode_chunk(id, sparse.size(), *bomb);
    ASSERT_FALSE(burst);
    EXPECT_NE(burst.error().message.find("no zstd frame of 131072 bytes"), std::string::npos)
        << burst.error().message;
    // One that holds less.
    const auto half = compress_chunk(std::span(sparse).first(65536), 3);
    ASSERT_TRUE(half);
    auto short_frame = decode_chunk(id, sparse.size(), *half);
    ASSERT_FALSE(short_frame);
    EXPECT_NE(short_frame.error().message.find("no zstd frame of 131072 bytes (it says 65536"),
              std::string::npos)
        << short_frame.error().message;
    // The chunk's frame with another after it: not what push writes.
    auto two = *compress_chunk(sparse, 3);
    two.insert(two.end(), half->begin(), half->end());
    auto pair = decode_chunk(id, sparse.size(), two);
    ASSERT_FALSE(pair);
    EXPECT_NE(pair.error().message.find("more than one frame"), std::string::npos)
        << pair.error().message;
    // A frame with a byte changed in its middle.
    auto damaged = *compress_chunk(sparse, 3);
    damaged[damaged.size() / 2] ^= 0x55;
    EXPECT_FALSE(decode_chunk(id, sparse.size(), damaged));
    // Longer than the chunk: refused before any decompression.
    auto longer = decode_chunk(id, 4096, sparse);
    ASSERT_FALSE(longer);
    EXPECT_NE(longer.error().message.find("where the manifest says at most 4096"),
              std::string::npos);
}

// A store in memory that counts what it is asked for.
class CountingStore final : public ChunkStore {
  public:
    void add(std::vector<uint8_t> bytes) { chunks_[chunk_id_of(bytes).hex()] = std::move(bytes); }
    Result<ChunkBytes> get(const ChunkId& id, uint64_t length) override {
        std::lock_guard lock(mutex_);
        ++gets_[id.hex()];
        auto it = chunks_.find(id.hex());
        if (it == chunks_.end()) return fail("no chunk " + id.hex());
        EMBER_TRY(check_chunk(id, length, it->second));
        return std::make_shared<const std::vector<uint8_t>>(it->second);
    }
    // An object read only by ranges (a pack): named by its bytes' SHA-256, as push names one.
    ChunkId add_object(std::vector<uint8_t> bytes) {
        const ChunkId id = chunk_id_of(bytes);
        objects_[id.hex()] = std::move(bytes);
        return id;
    }
    Result<std::vector<uint8_t>> get_range(const ChunkId& object, uint64_t offset,
                                           uint64_t length) override {
        std::lock_guard lock(mutex_);
        ++ranges_;
        auto it = objects_.find(object.hex());
        if (it == objects_.end() || offset > it->second.size() ||
            length > it->second.size() - offset)
            return fail("no such range of " + object.hex());
        return std::vector<uint8_t>(it->second.begin() + static_cast<ptrdiff_t>(offset),
                                    it->second.begin() + static_cast<ptrdiff_t>(offset + length));
    }
    int ranges() {
        std::lock_guard lock(mutex_);
        return ranges_;
    }
    int gets(const std::vector<uint8_t>& bytes) { return gets_[chunk_id_of(bytes).hex()]; }
    int total() {
        int n = 0;
        for (const auto& [_, c] : gets_) n += c;
        return n;
    }
    std::map<std::string, std::vector<uint8_t>> chunks_;
    std::map<std::string, std::vector<uint8_t>> objects_;

  private:
    std::mutex mutex_;
    std::map<std::string, int> gets_;
    int ranges_ = 0;
};

// `chunks` packed as push packs them (each compressed where that saves, at zstd's level 3), into a
// pack object of `store`, and the manifest of a memory of those chunks whose working set is all of
// it; with their stored bytes' sums where `sums`.
Manifest packed_memory(CountingStore& store, const std::vector<std::vector<uint8_t>>& chunks,
                       bool sums = false) {
    Manifest m;
    m.chunk_size = chunks.front().size();
    m.memory.bytes = chunks.size() * m.chunk_size;
    ChunkPack pack;
    std::vector<uint8_t> bytes;
    for (const auto& c : chunks) {
        store.add(c);
        m.memory.chunks.push_back(chunk_id_of(c));
        const auto frame = compress_chunk(c, 3);
        const std::vector<uint8_t>& stored = frame ? *frame : c;
        bytes.insert(bytes.end(), stored.begin(), stored.end());
        pack.chunks.push_back({chunk_id_of(c), c.size(), stored.size(),
                               sums ? std::optional(chunk_id_of(stored)) : std::nullopt});
    }
    pack.id = store.add_object(std::move(bytes));
    m.packs.push_back(std::move(pack));
    m.working_set = {{0, m.memory.bytes / 4096, false}};
    return m;
}

// What a delivery of `runs` handed over: each chunk's bytes by offset.
std::map<uint64_t, std::vector<uint8_t>> delivered(ChunkedMemory& memory,
                                                   std::span<const PageRun> runs) {
    std::mutex mutex;
    std::map<uint64_t, std::vector<uint8_t>> taken;
    auto done = memory.deliver(runs, [&](const MemoryExtent& e) -> Result<void> {
        const std::lock_guard guard(mutex);
        taken[e.offset] = e.bytes ? std::vector<uint8_t>(e.bytes, e.bytes + e.length)
                                  : std::vector<uint8_t>(e.length, 0);
        return {};
    });
    EXPECT_TRUE(done) << done.error().message;
    return taken;
}

TEST(SnapshotStore, ChunkedMemoryFetchesAChunkWhenAskedAndAWorkingSetsChunksAhead) {
    constexpr uint64_t kChunk = 16384;
    std::vector<std::vector<uint8_t>> data;
    for (uint8_t i = 0; i < 4; ++i) data.emplace_back(kChunk, static_cast<uint8_t>(i + 1));
    CountingStore store;
    for (const auto& d : data) store.add(d);
    Manifest m;
    m.chunk_size = kChunk;
    m.memory.bytes = 5 * kChunk;
    for (const auto& d : data) m.memory.chunks.push_back(chunk_id_of(d));
    m.memory.chunks.insert(m.memory.chunks.begin() + 2, std::nullopt);  // chunk 2: zeros
    ChunkedMemory memory(m, store, 4);

    auto zeros = memory.extent_at(2 * kChunk + 4096, 4096);
    ASSERT_TRUE(zeros);
    EXPECT_EQ(zeros->bytes, nullptr);
    EXPECT_EQ(zeros->offset, 2 * kChunk);
    EXPECT_EQ(store.total(), 0);

    auto first = memory.extent_at(kChunk + 8192, 4096);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(first->offset, kChunk);
    EXPECT_EQ(first->length, kChunk);
    EXPECT_EQ(first->bytes[0], 2);
    EXPECT_EQ(store.gets(data[1]), 1);

    // Runs over chunks 2 (zeros), 3 and 4 (data 2 and 3), the last two runs in one chunk: each
    // chunk handed out once, whole, the zeros without a fetch.
    const PageRun runs[] = {{2 * kChunk, 1, true},
                            {3 * kChunk + 4096, 1, true},
                            {4 * kChunk, 1, false},
                            {4 * kChunk + 8192, 1, false}};
    std::mutex taken_mutex;
    std::map<uint64_t, std::pair<uint64_t, int>> taken;  // offset: length, first byte (-1: zeros)
    ASSERT_TRUE(memory.deliver(runs, [&](const MemoryExtent& e) -> Result<void> {
        const std::lock_guard guard(taken_mutex);
        EXPECT_FALSE(taken.contains(e.offset)) << e.offset;
        taken[e.offset] = {e.length, e.bytes == nullptr ? -1 : e.bytes[e.length - 1]};
        return {};
    }));
    const std::map<uint64_t, std::pair<uint64_t, int>> expected = {
        {2 * kChunk, {kChunk, -1}}, {3 * kChunk, {kChunk, 3}}, {4 * kChunk, {kChunk, 4}}};
    EXPECT_EQ(taken, expected);
    EXPECT_EQ(memory.counts().ahead, 2u);
    EXPECT_EQ(store.gets(data[3]), 1);
    EXPECT_EQ(store.total(), 3);

    // A region of 2 MiB pages cannot be served from 16 KiB chunks.
    EXPECT_FALSE(memory.extent_at(0, 2 << 20));
}

// A patched chunk is its base with the patch's pages put in their places, on a fault and ahead
// alike: both fetched and checked, the base's shared bytes left as they were.
TEST(SnapshotStore, APatchedChunkIsItsBaseWithThePatchsPagesInPlace) {
    constexpr uint64_t kChunk = 4 * 4096;
    std::vector<uint8_t> base(kChunk), pages(2 * 4096);
    for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<uint8_t>(i / 4096 + 1);
    std::fill(pages.begin(), pages.begin() + 4096, 0xa1);
    std::fill(pages.begin() + 4096, pages.end(), 0xa3);
    CountingStore store;
    store.add(base);
    store.add(pages);
    Manifest m;
    m.chunk_size = kChunk;
    m.memory = {2 * kChunk, {chunk_id_of(base), chunk_id_of(base)}};
    m.memory.patches[1] = {chunk_id_of(pages), {{1, 1}, {3, 1}}};
    ChunkedMemory memory(m, store, 2);

    std::vector<uint8_t> expected = base;
    std::fill(expected.begin() + 4096, expected.begin() + 2 * 4096, 0xa1);
    std::fill(expected.begin() + 3 * 4096, expected.end(), 0xa3);
    auto faulted = memory.extent_at(kChunk + 4096, 4096);
    ASSERT_TRUE(faulted) << faulted.error().message;
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), faulted->bytes));
    EXPECT_EQ(memory.counts().fetched, 2u);
    EXPECT_EQ(memory.counts().fetched_bytes, kChunk + 2 * 4096);

    std::vector<std::vector<uint8_t>> taken(2);
    const PageRun runs[] = {{0, 1, false}, {kChunk, 4, false}};
    ASSERT_TRUE(memory.deliver(runs, [&](const MemoryExtent& e) -> Result<void> {
        taken[e.offset / kChunk].assign(e.bytes, e.bytes + e.length);
        return {};
    }));
    EXPECT_EQ(taken[0], base) << "the unpatched chunk of the same base is the base";
    EXPECT_EQ(taken[1], expected);
    EXPECT_EQ(memory.counts().ahead, 3u);

    store.chunks_.at(chunk_id_of(pages).hex())[5] ^= 1;  // the patch rots in the store
    auto corrupt = memory.extent_at(kChunk, 4096);
    ASSERT_FALSE(corrupt);
    EXPECT_NE(corrupt.error().message.find("chunk 1's patch"), std::string::npos)
        << corrupt.error().message;
}

TEST(SnapshotStore, ACorruptChunkIsAnErrorAndNeverHandedOut) {
    constexpr uint64_t kChunk = 4096;
    const std::vector<uint8_t> good(kChunk, 7);
    CountingStore store;
    store.add(good);
    store.chunks_.begin()->second[100] = 8;  // the store's copy rots
    Manifest m;
    m.chunk_size = kChunk;
    m.memory = {kChunk, {chunk_id_of(good)}};
    ChunkedMemory memory(m, store, 2);
    auto e = memory.extent_at(0, 4096);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("is corrupt"), std::string::npos) << e.error().message;
    const PageRun run[] = {{0, 1, true}};
    bool taken = false;
    auto p = memory.deliver(run, [&](const MemoryExtent&) -> Result<void> {
        taken = true;
        return {};
    });
    ASSERT_FALSE(p);
    EXPECT_FALSE(taken);
    EXPECT_NE(p.error().message.find("fetching the working set"), std::string::npos);
}

// A working set whose chunks a pack holds comes from it a range at a time (kPackReadBytes), no
// chunk asked for alone; a chunk the pack holds wrong, or a pack the store cannot read, is
// fetched alone instead, and every byte handed over is still the chunk's.
TEST(SnapshotStore, AWorkingSetComesFromItsPackARangeAtATimeAndAloneWhereThatFails) {
    constexpr uint64_t kChunk = 128 << 10;
    std::vector<std::vector<uint8_t>> chunks;
    for (int i = 0; i < 40; ++i) {  // 5 MiB: three reads of at most 2 MiB
        std::vector<uint8_t> c(kChunk, static_cast<uint8_t>(i + 1));
        for (size_t b = 0; b < c.size(); b += 97) c[b] = static_cast<uint8_t>(b * (i + 3));
        chunks.push_back(std::move(c));
    }
    CountingStore store;
    const Manifest m = packed_memory(store, chunks);
    ASSERT_LT(m.packs[0].bytes(), m.memory.bytes) << "the chunks are stored compressed";
    std::map<uint64_t, std::vector<uint8_t>> expected;
    for (size_t i = 0; i < chunks.size(); ++i) expected[i * kChunk] = chunks[i];
    {
        ChunkedMemory memory(m, store, 32);
        EXPECT_EQ(delivered(memory, m.working_set), expected);
        EXPECT_EQ(store.total(), 0) << "no chunk asked for alone";
        EXPECT_EQ(store.ranges(), 3);
        EXPECT_EQ(memory.counts().pack_reads, 3u);
        EXPECT_EQ(memory.counts().pack_bytes, m.packs[0].bytes());
        EXPECT_EQ(memory.counts().packed, chunks.size());
        EXPECT_EQ(memory.counts().ahead, chunks.size());
    }
    // The pack's copy of chunk 7 rots: chunk 7 alone is fetched alone.
    auto& pack = store.objects_.at(m.packs[0].id.hex());
    uint64_t at = 0;
    for (int i = 0; i < 7; ++i) at += m.packs[0].chunks[i].stored;
    pack[at + m.packs[0].chunks[7].stored / 2] ^= 0x55;
    {
        ChunkedMemory memory(m, store, 32);
        EXPECT_EQ(delivered(memory, m.working_set), expected);
        EXPECT_EQ(store.total(), 1);
        EXPECT_EQ(store.gets(chunks[7]), 1);
        EXPECT_EQ(memory.counts().packed, chunks.size() - 1);
    }
    // The pack is gone from the store: every chunk alone, the pack asked for once (one thread:
    // with more, the reads under way when the first fails ask too).
    store.objects_.clear();
    const int ranges = store.ranges();
    {
        ChunkedMemory memory(m, store, 1);
        EXPECT_EQ(delivered(memory, m.working_set), expected);
        EXPECT_EQ(store.total(), 1 + 40);
        EXPECT_EQ(memory.counts().packed, 0u);
        EXPECT_EQ(store.ranges(), ranges + 1);
    }
}

// With sums, a pack's compressed chunks are checked by their stored bytes: each comes from its
// read, and one whose stored bytes rotted is fetched alone. A manifest whose sum names another
// chunk's frame gets that frame's bytes for its chunk (what it says of its own memory), which the
// host's cache, which every restore reads, does not keep under the chunk's name.
TEST(SnapshotStore, APacksSumsCheckItsStoredBytesAndTheCacheKeepsOnlyWhatNamesSay) {
    constexpr uint64_t kChunk = 128 << 10;
    std::vector<std::vector<uint8_t>> chunks;
    for (int i = 0; i < 12; ++i) {
        std::vector<uint8_t> c(kChunk, static_cast<uint8_t>(i + 1));
        for (size_t b = 0; b < c.size(); b += 97) c[b] = static_cast<uint8_t>(b * (i + 3));
        chunks.push_back(std::move(c));
    }
    CountingStore store;
    const Manifest m = packed_memory(store, chunks, true);
    for (const auto& e : m.packs[0].chunks) {
        ASSERT_LT(e.stored, e.length) << "compressed";
        ASSERT_TRUE(e.sum);
    }
    std::map<uint64_t, std::vector<uint8_t>> expected;
    for (size_t i = 0; i < chunks.size(); ++i) expected[i * kChunk] = chunks[i];
    {
        ChunkedMemory memory(m, store, 32);
        EXPECT_EQ(delivered(memory, m.working_set), expected);
        EXPECT_EQ(store.total(), 0);
        EXPECT_EQ(memory.counts().packed, chunks.size());
    }
    {
        const Unpacked read = store.get_packed(m.packs[0].id, 0, m.packs[0].chunks);
        ASSERT_EQ(read.by_sum.size(), chunks.size());
        for (size_t i = 0; i < chunks.size(); ++i) {
            ASSERT_TRUE(read.chunks[i]);
            EXPECT_EQ(*read.chunks[i], chunks[i]);
            EXPECT_TRUE(read.by_sum[i]) << "checked by its sum";
        }
    }
    uint64_t at = 0;
    for (int i = 0; i < 5; ++i) at += m.packs[0].chunks[i].stored;
    store.objects_.at(m.packs[0].id.hex())[at + m.packs[0].chunks[5].stored / 2] ^= 0x55;
    {
        ChunkedMemory memory(m, store, 32);
        EXPECT_EQ(delivered(memory, m.working_set), expected);
        EXPECT_EQ(store.total(), 1);
        EXPECT_EQ(store.gets(chunks[5]), 1);
        EXPECT_EQ(memory.counts().packed, chunks.size() - 1);
    }

    // The lie: chunk 2's entry holds chunk 3's frame, with that frame's sum.
    Manifest lying = m;
    ChunkPack lie;
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i < chunks.size(); ++i) {
        const auto frame = *compress_chunk(chunks[i == 2 ? 3 : i], 3);
        bytes.insert(bytes.end(), frame.begin(), frame.end());
        lie.chunks.push_back({chunk_id_of(chunks[i]), kChunk, frame.size(), chunk_id_of(frame)});
    }
    lie.id = store.add_object(std::move(bytes));
    lying.packs = {lie};
    testing::TempDir dir;
    auto cache = ChunkCache::open(dir.path(), 64 << 20, store);
    ASSERT_TRUE(cache) << cache.error().message;
    {
        ChunkedMemory memory(lying, **cache, 8);
        const auto got = delivered(memory, lying.working_set);
        EXPECT_EQ(got.at(2 * kChunk), chunks[3]) << "what its manifest says";
        EXPECT_EQ(got.at(4 * kChunk), chunks[4]);
        (*cache)->flush();
    }
    EXPECT_EQ((*cache)->counts().refused, 1u);
    EXPECT_EQ((*cache)->counts().bad, 0u);
    const int gets = store.total();
    auto two = (*cache)->get(chunk_id_of(chunks[2]), kChunk);
    ASSERT_TRUE(two) << two.error().message;
    EXPECT_EQ(**two, chunks[2]) << "from the store: the cache did not keep the lie";
    auto four = (*cache)->get(chunk_id_of(chunks[4]), kChunk);
    ASSERT_TRUE(four) << four.error().message;
    EXPECT_EQ(**four, chunks[4]);
    EXPECT_EQ(store.total(), gets + 1) << "chunk 4 from the cache";
}

// A drive's image read at any offset: the chunks a read spans, each fetched once while kept, the
// zero chunk never, a read past the end short, and a corrupt chunk an error, never its bytes.
TEST(SnapshotStore, AChunkedImageReadsAcrossChunksAndFetchesNoZeros) {
    constexpr uint64_t kChunk = 4096;
    std::vector<uint8_t> image(3 * kChunk + 100);
    for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 7 + i / 4096);
    std::fill(image.begin() + kChunk, image.begin() + 2 * kChunk, 0);  // chunk 1: zeros
    CountingStore store;
    ChunkedFile file{image.size(), {}};
    for (uint64_t at = 0; at < image.size(); at += kChunk) {
        std::vector<uint8_t> piece(
            image.begin() + static_cast<ptrdiff_t>(at),
            image.begin() + static_cast<ptrdiff_t>(std::min<uint64_t>(at + kChunk, image.size())));
        if (at == kChunk) {
            file.chunks.emplace_back();
            continue;
        }
        file.chunks.emplace_back(chunk_id_of(piece));
        store.add(std::move(piece));
    }
    Manifest m;
    m.chunk_size = kChunk;
    ChunkedImage reader(m, file, store);
    EXPECT_EQ(reader.size(), image.size());

    std::vector<uint8_t> out(2 * kChunk, 0xee);
    auto got = reader.read(kChunk - 5, out);  // the end of 0, all of 1 (zeros), most of 2
    ASSERT_TRUE(got) << got.error().message;
    ASSERT_EQ(*got, out.size());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), image.begin() + kChunk - 5));
    EXPECT_EQ(store.total(), 2);

    auto tail = reader.read(3 * kChunk + 50, out);
    ASSERT_TRUE(tail) << tail.error().message;
    ASSERT_EQ(*tail, 50u);
    EXPECT_TRUE(std::equal(out.begin(), out.begin() + 50, image.begin() + 3 * kChunk + 50));
    auto past = reader.read(image.size(), out);
    ASSERT_TRUE(past);
    EXPECT_EQ(*past, 0u);
    EXPECT_EQ(store.total(), 3);
    ASSERT_TRUE(reader.read(0, std::span(out).first(10)));  // kept: not fetched again
    EXPECT_EQ(store.total(), 3);
    EXPECT_EQ(reader.counts().fetched, 3u);

    for (auto& [_, bytes] : store.chunks_) bytes[0] ^= 1;  // every stored chunk rots
    ChunkedImage rotten(m, file, store);
    std::fill(out.begin(), out.end(), 0xee);
    auto bad = rotten.read(2 * kChunk, std::span(out).first(kChunk));
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("is corrupt"), std::string::npos) << bad.error().message;
    EXPECT_EQ(out[1], 0xee) << "a corrupt chunk's bytes were handed out";
    EXPECT_EQ(rotten.counts().failed, 1u);
}

std::vector<std::vector<uint8_t>> some_chunks(int n, size_t size) {
    std::vector<std::vector<uint8_t>> out;
    for (int i = 0; i < n; ++i) out.emplace_back(size, static_cast<uint8_t>(0x40 + i));
    return out;
}

// Ten restores at once (each its own cache, as each is its own process) over one folder: the store
// sees each chunk once.
TEST(SnapshotStore, TenCachesOfOneFolderFetchEachChunkOnce) {
    testing::TempDir dir;
    CountingStore origin;
    const auto chunks = some_chunks(6, 65536);
    for (const auto& c : chunks) origin.add(c);
    std::atomic<int> wrong{0};
    {
        std::vector<std::jthread> clones;
        for (int k = 0; k < 10; ++k)
            clones.emplace_back([&, k] {
                auto cache = ChunkCache::open(dir.path() + "/cache", 1 << 30, origin);
                if (!cache) {
                    ++wrong;
                    return;
                }
                for (size_t i = 0; i < chunks.size(); ++i) {
                    const auto& c = chunks[(i + static_cast<size_t>(k)) % chunks.size()];
                    auto got = (*cache)->get(chunk_id_of(c), c.size());
                    if (!got || **got != c) ++wrong;
                }
            });
    }
    EXPECT_EQ(wrong, 0);
    for (const auto& c : chunks) EXPECT_EQ(origin.gets(c), 1);
}

// A cached chunk is hashed once a boot: written from checked bytes, or checked once, it is not
// hashed again until the host starts anew (another boot ID). One a host's crash left bad is found
// bad in the next boot and fetched again, and the good bytes go to the reader.
TEST(SnapshotStore, ACachedChunkIsCheckedOnceEachBootAndABadOneFetchedAgain) {
    testing::TempDir dir;
    CountingStore origin;
    const auto chunk = some_chunks(1, 4096)[0];
    const ChunkId id = chunk_id_of(chunk);
    origin.add(chunk);
    const bool marks = testing::takes_user_xattrs(dir.path());
    auto open = [&](const char* boot) {
        auto cache = ChunkCache::open(dir.path(), 1 << 20, origin, std::chrono::seconds(30), boot);
        EXPECT_TRUE(cache) << cache.error().message;
        return std::move(*cache);
    };
    {
        auto first = open("boot-one");
        ASSERT_TRUE(first->get(id, chunk.size()));
        first->flush();
        EXPECT_EQ(first->counts().fetched, 1u);
    }
    {
        auto same_boot = open("boot-one");
        auto got = same_boot->get(id, chunk.size());
        ASSERT_TRUE(got);
        EXPECT_EQ(**got, chunk);
        EXPECT_EQ(same_boot->counts().hits, 1u);
        EXPECT_EQ(same_boot->counts().hashed, marks ? 0u : 1u) << "written from checked bytes";
    }
    {
        auto next_boot = open("boot-two");
        ASSERT_TRUE(next_boot->get(id, chunk.size()));
        EXPECT_EQ(next_boot->counts().hashed, 1u) << "a chunk of another boot is checked";
    }
    {
        auto again = open("boot-two");
        ASSERT_TRUE(again->get(id, chunk.size()));
        EXPECT_EQ(again->counts().hashed, marks ? 0u : 1u) << "and marked once checked";
    }
    {
        std::fstream f(dir.path() + "/" + ChunkCache::path_of(id),
                       std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(10);
        f.put('!');
    }
    auto after_crash = open("boot-three");
    auto got = after_crash->get(id, chunk.size());
    ASSERT_TRUE(got);
    EXPECT_EQ(**got, chunk);
    EXPECT_EQ(after_crash->counts().bad, 1u);
    EXPECT_EQ(origin.gets(chunk), 2);
}

TEST(SnapshotStore, ACachePastItsBoundLetsItsLeastRecentlyUsedChunksGo) {
    testing::TempDir dir;
    CountingStore origin;
    const auto c = some_chunks(4, 4096);  // A B C D
    for (const auto& x : c) origin.add(x);
    auto cache = ChunkCache::open(dir.path(), 3 * 4096, origin);
    ASSERT_TRUE(cache);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*cache)->get(chunk_id_of(c[i]), 4096));
    (*cache)->flush();
    // B and C last used long ago, A just now (the clock's ticks are too coarse to order them).
    for (int i : {1, 2}) {
        const timeval old[2] = {{1000 + i, 0}, {1000 + i, 0}};
        ASSERT_EQ(
            ::utimes((dir.path() + "/" + ChunkCache::path_of(chunk_id_of(c[i]))).c_str(), old), 0);
    }
    ASSERT_TRUE((*cache)->get(chunk_id_of(c[0]), 4096));
    ASSERT_TRUE((*cache)->get(chunk_id_of(c[3]), 4096));  // over the bound: B and C go
    (*cache)->flush();
    EXPECT_EQ((*cache)->counts().evicted, 2u);
    for (int i : {0, 3}) ASSERT_TRUE((*cache)->get(chunk_id_of(c[i]), 4096));
    EXPECT_EQ(origin.gets(c[0]), 1);
    EXPECT_EQ(origin.gets(c[3]), 1);
    ASSERT_TRUE((*cache)->get(chunk_id_of(c[1]), 4096));
    EXPECT_EQ(origin.gets(c[1]), 2);
}

// A snapshot's view (snapshot_view.h) counts against the cache's bound by the blocks its files
// take, and goes as a chunk does, least recently used first (its time is its memory file's); the
// temporary folder of a view's maker that died ten minutes ago goes, one being made now counts
// and stays.
TEST(SnapshotStore, ViewsCountAgainstTheBoundAndADeadMakersFolderGoes) {
    testing::TempDir dir;
    CountingStore origin;
    const auto c = some_chunks(2, 65536);
    for (const auto& x : c) origin.add(x);
    const std::string views = dir.path() + "/" + kViewFolder;
    auto folder_with_memory = [&](const std::string& name, time_t used) {
        ASSERT_EQ(::mkdir((views + "/" + name).c_str(), 0755), 0);
        const std::string memory = views + "/" + name + "/memory";
        std::ofstream(memory, std::ios::binary) << std::string(65536, 'v');
        const timeval old[2] = {{used, 0}, {used, 0}};
        ASSERT_EQ(::utimes(memory.c_str(), old), 0);
    };
    ASSERT_EQ(::mkdir(views.c_str(), 0755), 0);
    const std::string view = std::string(64, 'a');
    const std::string dead = "." + view + ".tmp-dead", live = "." + view + ".tmp-live";
    folder_with_memory(view, 1000);
    folder_with_memory(dead, ::time(nullptr) - 601);
    folder_with_memory(live, ::time(nullptr));
    // Two chunks, the view and the live maker's folder, which counts but is not let go.
    auto cache = ChunkCache::open(dir.path(), 230000, origin);
    ASSERT_TRUE(cache);
    ASSERT_TRUE((*cache)->get(chunk_id_of(c[0]), c[0].size()));
    (*cache)->flush();
    EXPECT_FALSE(std::filesystem::exists(views + "/" + dead)) << "a dead maker's folder goes";
    EXPECT_TRUE(std::filesystem::exists(views + "/" + live)) << "a live maker's stays";
    EXPECT_TRUE(std::filesystem::exists(views + "/" + view)) << "within the bound: the view stays";
    EXPECT_EQ((*cache)->counts().evicted, 0u);
    // The second chunk takes the folder past its bound: the view, least recently used, goes
    // whole, and the chunks stay.
    ASSERT_TRUE((*cache)->get(chunk_id_of(c[1]), c[1].size()));
    (*cache)->flush();
    EXPECT_FALSE(std::filesystem::exists(views + "/" + view));
    EXPECT_EQ((*cache)->counts().evicted, 1u);
    for (const auto& x : c) {
        ASSERT_TRUE((*cache)->get(chunk_id_of(x), x.size()));
        EXPECT_EQ(origin.gets(x), 1);
    }
    for (const auto& e : std::filesystem::directory_iterator(views))
        EXPECT_EQ(e.path().filename(), live) << "nothing set aside is left behind";
}

// While a working set goes in, fetched chunks wait to be written, their locks held: a second
// fetch of one of them, or of another chunk under the same lock byte, must not wait for the lock
// (the writes wait for the working set, which waits for that fetch). A lock wait of ten minutes
// makes a fetch that waits on itself hang the test.
TEST(SnapshotStore, HeldWritesNeverMakeARestoreWaitOnItself) {
    testing::TempDir dir;
    CountingStore origin;
    // Two chunks whose names share their first two bytes.
    std::map<off_t, std::vector<uint8_t>> by_lock;
    std::vector<uint8_t> a, b;
    for (uint32_t i = 0; b.empty(); ++i) {
        std::vector<uint8_t> c(64, 0);
        std::memcpy(c.data(), &i, sizeof i);
        const off_t byte = ChunkCache::lock_byte(chunk_id_of(c));
        if (auto [it, fresh] = by_lock.emplace(byte, c); !fresh) {
            a = it->second;
            b = c;
        }
    }
    origin.add(a);
    origin.add(b);
    auto cache = ChunkCache::open(dir.path(), 1 << 20, origin, std::chrono::minutes(10));
    ASSERT_TRUE(cache);
    (*cache)->hold_writes(true);
    for (const auto* c : {&a, &a, &b}) {
        auto got = (*cache)->get(chunk_id_of(*c), c->size());
        ASSERT_TRUE(got) << got.error().message;
        EXPECT_EQ(**got, *c);
    }
    EXPECT_EQ(origin.gets(a), 1) << "the second came from the queue";
    EXPECT_EQ(origin.gets(b), 1);
    struct stat st{};
    EXPECT_NE(::stat((dir.path() + "/" + ChunkCache::path_of(chunk_id_of(a))).c_str(), &st), 0)
        << "held: not written yet";
    (*cache)->hold_writes(false);
    (*cache)->flush();
    for (const auto* c : {&a, &b})
        EXPECT_EQ(::stat((dir.path() + "/" + ChunkCache::path_of(chunk_id_of(*c))).c_str(), &st),
                  0);
}

// The threads of one restore (one cache) fetch each chunk once: they keep out of each other's
// locks by the cache's own list, since the kernel's lock, on the one description of a lock file
// all of them share, does not tell them apart.
TEST(SnapshotStore, TheThreadsOfOneCacheFetchEachChunkOnce) {
    testing::TempDir dir;
    CountingStore origin;
    const auto chunks = some_chunks(24, 65536);
    std::set<off_t> bytes;
    for (const auto& c : chunks) {
        origin.add(c);
        bytes.insert(ChunkCache::lock_byte(chunk_id_of(c)));
    }
    ASSERT_EQ(bytes.size(), chunks.size()) << "each chunk under a lock byte of its own";
    auto cache = ChunkCache::open(dir.path(), 1 << 30, origin);
    ASSERT_TRUE(cache);
    std::atomic<int> wrong{0};
    {
        std::vector<std::jthread> threads;
        for (size_t k = 0; k < 16; ++k)
            threads.emplace_back([&, k] {
                for (size_t i = 0; i < chunks.size(); ++i) {
                    const auto& c = chunks[(i * 7 + k) % chunks.size()];
                    auto got = (*cache)->get(chunk_id_of(c), c.size());
                    if (!got || **got != c) ++wrong;
                }
            });
    }
    EXPECT_EQ(wrong, 0);
    for (const auto& c : chunks) EXPECT_EQ(origin.gets(c), 1);
}

// A working set of more chunks than a process may hold files open, and more bytes than the writer
// holds back, is kept whole: held writes that outgrow the queue are let go, and a fetch waits for
// room rather than leaving its chunk out. Before, chunks past the 512th, or past 128 MiB, were
// never written, so every later restore fetched them again.
TEST(SnapshotStore, AWorkingSetPastWhatTheWriterHoldsBackIsKeptWhole) {
    testing::TempDir dir;
    CountingStore origin;
    // 600 chunks of a page, then 36 of the largest size (144 MiB), each its own bytes, held by
    // the store alone.
    std::vector<ChunkId> ids;
    for (uint32_t i = 0; i < 636; ++i) {
        std::vector<uint8_t> c(i < 600 ? 4096 : kMaxChunkSize, static_cast<uint8_t>(i));
        std::memcpy(c.data(), &i, sizeof i);
        ids.push_back(chunk_id_of(c));
        origin.add(std::move(c));
    }
    auto bytes_of = [&](const ChunkId& id) -> const std::vector<uint8_t>& {
        return origin.chunks_.at(id.hex());
    };
    {
        auto restore = ChunkCache::open(dir.path(), uint64_t{1} << 30, origin);
        ASSERT_TRUE(restore);
        (*restore)->hold_writes(true);
        for (const auto& id : ids) {
            auto got = (*restore)->get(id, bytes_of(id).size());
            ASSERT_TRUE(got) << got.error().message;
            ASSERT_EQ(**got, bytes_of(id));
        }
        (*restore)->hold_writes(false);
        (*restore)->flush();
        EXPECT_EQ((*restore)->counts().fetched, ids.size());
    }
    auto next = ChunkCache::open(dir.path(), uint64_t{1} << 30, origin);
    ASSERT_TRUE(next);
    for (const auto& id : ids) ASSERT_TRUE((*next)->get(id, bytes_of(id).size()));
    EXPECT_EQ((*next)->counts().hits, ids.size());
    EXPECT_EQ(origin.total(), static_cast<int>(ids.size())) << "each chunk fetched once";
}

// A stand-in for ember-store-fetch: `script` run by sh in `dir`, where it keeps its files.
std::string fake_fetcher(const testing::TempDir& dir, const std::string& script) {
    const std::string path = dir.path() + "/fetcher";
    std::ofstream(path) << "#!/bin/sh\ncd " << dir.path() << "\n" << script;
    EXPECT_EQ(::chmod(path.c_str(), 0700), 0);
    return path;
}

// An answer from ember-store-fetch that comes after its request gave up is read past: the next
// request gets its own answer, where the late one's bytes once read as the next answer's head and
// ended every fetch. The fetcher here answers the first request only once the second has come.
TEST(SnapshotStore, ALateAnswerFromTheFetcherIsDroppedNotTakenForTheNext) {
    testing::TempDir dir;
    const std::string fetcher = fake_fetcher(dir,
                                             "read -r first; read -r second\n"
                                             "printf '%s OK 5\\nlate!' \"${first%% *}\"\n"
                                             "printf '%s OK 2\\n{}' \"${second%% *}\"\n"
                                             "cat > /dev/null\n");
    auto store =
        FetcherStore::start(fetcher, "http://store.invalid", std::chrono::milliseconds(100));
    ASSERT_TRUE(store) << store.error().message;
    auto first = (*store)->manifest("a");
    ASSERT_FALSE(first);
    EXPECT_NE(first.error().message.find("no answer from the store within 100 ms"),
              std::string::npos)
        << first.error().message;
    auto second = (*store)->manifest("b");
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(*second, "{}");
}

// A range of an object through ember-store-fetch: asked for by its offset and length, and taken
// only whole. The fetcher here answers every RANGE with the same 3 bytes.
TEST(SnapshotStore, ARangeThroughTheFetcherIsAskedForByOffsetAndLengthAndTakenOnlyWhole) {
    testing::TempDir dir;
    const std::string fetcher = fake_fetcher(dir,
                                             "while read -r id verb path offset n; do\n"
                                             "  echo \"$verb $path $offset $n\" >> asked\n"
                                             "  printf '%s OK 3\\nabc' \"$id\"\n"
                                             "done\n");
    auto store = FetcherStore::start(fetcher, "http://store.invalid", std::chrono::seconds(30));
    ASSERT_TRUE(store) << store.error().message;
    const ChunkId pack = chunk_id_of(bytes_of("pack"));
    auto three = (*store)->get_range(pack, 5, 3);
    ASSERT_TRUE(three) << three.error().message;
    EXPECT_EQ(*three, bytes_of("abc"));
    auto short_one = (*store)->get_range(pack, 8, 4);
    ASSERT_FALSE(short_one);
    EXPECT_NE(short_one.error().message.find("3 bytes where 4 were asked for"), std::string::npos)
        << short_one.error().message;
    store->reset();
    EXPECT_EQ(testing::read_file(dir.path() + "/asked"),
              "RANGE chunks/" + pack.hex() + " 5 3\nRANGE chunks/" + pack.hex() + " 8 4\n");
}

// An ember-store-fetch from before packs answers a RANGE as any line it cannot read, with "0 ERR":
// the RANGE fails at once with its words (where it waited out its bound before), the next is not
// sent, and GETs go on.
TEST(SnapshotStore, ARangeAnOlderFetcherCannotReadFailsAtOnceAndGetsGoOn) {
    testing::TempDir dir;
    const auto c = some_chunks(1, 4096);
    const ChunkId id = chunk_id_of(c[0]);
    {
        std::ofstream(dir.path() + "/chunk", std::ios::binary)
            .write(reinterpret_cast<const char*>(c[0].data()),
                   static_cast<std::streamsize>(c[0].size()));
    }
    const std::string fetcher =
        fake_fetcher(dir,
                     "while read -r id verb path rest; do\n"
                     "  echo \"$verb\" >> asked\n"
                     "  case $verb in\n"
                     "    GET) printf '%s OK %s\\n' \"$id\" \"$(wc -c < chunk)\"; cat chunk ;;\n"
                     "    *) echo '0 ERR a request that is not ID GET PATH MOST' ;;\n"
                     "  esac\n"
                     "done\n");
    // A bound no test run waits out: where the refusal were missed, the RANGE would fail with
    // "no answer ... within", not with the fetcher's words.
    auto store = FetcherStore::start(fetcher, "http://store.invalid", std::chrono::seconds(20));
    ASSERT_TRUE(store) << store.error().message;
    const ChunkId pack = chunk_id_of(bytes_of("pack"));
    auto range = (*store)->get_range(pack, 0, 3);
    ASSERT_FALSE(range);
    EXPECT_NE(range.error().message.find("reads no ranges (a request that is not ID GET"),
              std::string::npos)
        << range.error().message;
    auto again = (*store)->get_range(pack, 3, 3);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("reads no ranges"), std::string::npos)
        << again.error().message;
    auto chunk = (*store)->get(id, c[0].size());
    ASSERT_TRUE(chunk) << chunk.error().message;
    EXPECT_EQ(**chunk, c[0]);
    store->reset();
    EXPECT_EQ(testing::read_file(dir.path() + "/asked"), "RANGE\nGET\n");
}

// A push into a bucket through ember-store-fetch: a HAS for each chunk, a PUT of its bytes for each
// the store lacks, then the manifest's PUT. The fetcher here takes each PUT's bytes from the pipe
// exactly (dd, a byte at a time), so a PUT not framed as its line says leaves the next request
// unread and the test waiting out its bound.
TEST(SnapshotStore, APushThroughTheFetcherPutsOnlyWhatTheStoreLacks) {
    testing::TempDir dir;
    const std::string fetcher = fake_fetcher(
        dir,
        "while read -r id verb path n; do\n"
        "  case $verb in\n"
        "    HAS) if [ -e \"held-${path##*/}\" ]; then echo \"$id YES\";\n"
        "         else echo \"$id NO\"; fi ;;\n"
        "    PUT) dd bs=1 count=\"$n\" of=\"put-${path##*/}\" status=none; echo \"$id OK 0\" ;;\n"
        "    *) echo \"$id ERR not a HAS or a PUT\" ;;\n"
        "  esac\n"
        "done\n");
    const auto c = some_chunks(2, 4096);
    const ChunkId held = chunk_id_of(c[0]), lacking = chunk_id_of(c[1]);
    {
        std::ofstream(dir.path() + "/held-" + held.hex()) << "x";
    }
    auto store = FetcherStore::start(fetcher, "s3://bucket", std::chrono::seconds(30));
    ASSERT_TRUE(store) << store.error().message;
    auto first = (*store)->put(held, c[0], c[0].size());
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_FALSE(*first) << "the store held it";
    auto second = (*store)->put(lacking, c[1], c[1].size());
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_TRUE(*second);
    auto manifest = (*store)->put_manifest("fn", "{\"chunk_size\": 4096}");
    ASSERT_TRUE(manifest) << manifest.error().message;
    EXPECT_NE(::access((dir.path() + "/put-" + held.hex()).c_str(), F_OK), 0);
    const std::string put = testing::read_file(dir.path() + "/put-" + lacking.hex());
    EXPECT_EQ(put, std::string(c[1].begin(), c[1].end()));
    EXPECT_EQ(testing::read_file(dir.path() + "/put-fn.json"), "{\"chunk_size\": 4096}");
}

// Two restores at once (two caches, as two processes), each holding back its writes, each holding
// the lock of a chunk the other then needs: the one that waits lets its writes go, so both end,
// each chunk fetched once, where each waited for the other's writes, held until its own working
// set was in. A lock wait of ten minutes makes that deadlock hang the test.
TEST(SnapshotStore, TwoRestoresHoldingBackTheirWritesNeverWaitOnEachOther) {
    testing::TempDir dir;
    CountingStore origin;
    const auto c = some_chunks(2, 4096);  // X, Y
    for (const auto& x : c) origin.add(x);
    ASSERT_NE(ChunkCache::lock_byte(chunk_id_of(c[0])), ChunkCache::lock_byte(chunk_id_of(c[1])));
    auto first = ChunkCache::open(dir.path(), 1 << 20, origin, std::chrono::minutes(10));
    auto second = ChunkCache::open(dir.path(), 1 << 20, origin, std::chrono::minutes(10));
    ASSERT_TRUE(first && second);
    (*first)->hold_writes(true);
    (*second)->hold_writes(true);
    ASSERT_TRUE((*first)->get(chunk_id_of(c[0]), 4096));   // holds X's lock
    ASSERT_TRUE((*second)->get(chunk_id_of(c[1]), 4096));  // holds Y's lock
    std::atomic<int> wrong{0};
    {
        // Each restore's working set is in once it has its second chunk: it lets its writes go.
        std::jthread a([&] {
            auto got = (*first)->get(chunk_id_of(c[1]), 4096);
            if (!got || **got != c[1]) ++wrong;
            (*first)->hold_writes(false);
        });
        std::jthread b([&] {
            auto got = (*second)->get(chunk_id_of(c[0]), 4096);
            if (!got || **got != c[0]) ++wrong;
            (*second)->hold_writes(false);
        });
    }
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(origin.gets(c[0]), 1);
    EXPECT_EQ(origin.gets(c[1]), 1);
}

// A restore that holds back its writes for longer than a tenth of the lock wait (its store
// trickles: slow, or hostile) lets them go, and with them the locks of the chunks it held back:
// another process that wants one of those chunks finds it written, rather than waiting the whole
// lock wait and fetching it again. The restore here never lets go of its hold itself.
TEST(SnapshotStore, AHoldThatOutlastsATenthOfTheLockWaitLetsItsLocksGo) {
    testing::TempDir dir;
    CountingStore origin;
    const auto chunk = some_chunks(1, 4096)[0];
    origin.add(chunk);
    const auto wait = std::chrono::seconds(20);
    auto stalled = ChunkCache::open(dir.path(), 1 << 20, origin, wait);
    auto neighbour = ChunkCache::open(dir.path(), 1 << 20, origin, wait);
    ASSERT_TRUE(stalled && neighbour);
    (*stalled)->hold_writes(true);
    ASSERT_TRUE((*stalled)->get(chunk_id_of(chunk), chunk.size()));
    auto got = (*neighbour)->get(chunk_id_of(chunk), chunk.size());
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(**got, chunk);
    EXPECT_EQ(origin.gets(chunk), 1) << "the neighbour waited out the lock and fetched it again";
    EXPECT_EQ((*neighbour)->counts().hits, 1u);
}

// Each of the 65,536 locks has a place of its own: a byte of one of 16 files.
TEST(SnapshotStore, EveryLockHasAPlaceOfItsOwn) {
    std::set<std::pair<std::string, off_t>> places;
    for (off_t lock = 0; lock < 65536; ++lock) {
        auto [file, byte] = ChunkCache::lock_place(lock);
        ASSERT_TRUE(byte >= 0 && byte < 4096) << lock;
        places.emplace(std::move(file), byte);
    }
    EXPECT_EQ(places.size(), 65536u);
    std::set<std::string> files;
    for (const auto& place : places) files.insert(place.first);
    EXPECT_EQ(files.size(), 16u);
}

// Another process's try at chunk `id`'s lock in the cache at `folder`, on a description of its
// own, which holds the lock, where taken, while it lives.
struct OthersLock {
    UniqueFd fd;
    bool taken = false;
};
OthersLock others_lock(const std::string& folder, const ChunkId& id) {
    const auto place = ChunkCache::lock_place(ChunkCache::lock_byte(id));
    OthersLock l{
        UniqueFd(::open((folder + "/" + place.file).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600))};
    struct flock range{};
    range.l_type = F_WRLCK;
    range.l_whence = SEEK_SET;
    range.l_start = place.byte;
    range.l_len = 1;
    l.taken = l.fd.valid() && ::fcntl(l.fd.get(), F_OFD_SETLK, &range) == 0;
    return l;
}

// Another process finds a chunk's lock where lock_place says, held from the fetch until the chunk
// is in the cache; and the locks of one restore spread over the 16 files (the kernel looks
// through a file's locks one by one at every lock and unlock).
TEST(SnapshotStore, AChunkHeldBackHoldsItsLockWhereOtherProcessesLook) {
    testing::TempDir dir;
    CountingStore origin;
    auto cache = ChunkCache::open(dir.path(), 1 << 20, origin, std::chrono::minutes(10));
    ASSERT_TRUE(cache);
    (*cache)->hold_writes(true);
    const auto chunks = some_chunks(64, 4096);
    for (const auto& c : chunks) {
        origin.add(c);
        ASSERT_TRUE((*cache)->get(chunk_id_of(c), c.size()));
    }
    std::set<std::string> files;
    for (const auto& c : chunks) {
        EXPECT_FALSE(others_lock(dir.path(), chunk_id_of(c)).taken) << "held back, its lock held";
        files.insert(ChunkCache::lock_place(ChunkCache::lock_byte(chunk_id_of(c))).file);
    }
    EXPECT_EQ(files.size(), 16u) << "64 locks in " << files.size() << " files";
    (*cache)->hold_writes(false);
    (*cache)->flush();
    for (const auto& c : chunks)
        EXPECT_TRUE(others_lock(dir.path(), chunk_id_of(c)).taken) << "written, its lock let go";
}

// A process stopped while it holds a chunk's lock delays the others by the wait, then they fetch.
TEST(SnapshotStore, ALockHeldForEverDelaysAFetchButDoesNotStopIt) {
    testing::TempDir dir;
    CountingStore origin;
    const auto chunk = some_chunks(1, 4096)[0];
    origin.add(chunk);
    auto cache = ChunkCache::open(dir.path(), 1 << 20, origin, std::chrono::milliseconds(50));
    ASSERT_TRUE(cache);
    const OthersLock held = others_lock(dir.path(), chunk_id_of(chunk));
    ASSERT_TRUE(held.taken);
    auto got = (*cache)->get(chunk_id_of(chunk), chunk.size());
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(**got, chunk);
}

// Through the host's cache: the first restore reads the pack once for all its chunks, which the
// cache then keeps; the next finds every chunk there and reads nothing. A chunk whose lock
// another process holds (its fetch under way) is left out of the read, for a fetch of its own
// that waits for the other's, and so is one the cache has.
TEST(SnapshotStore, ACacheReadsAPackOnceAndLeavesAChunkAnotherFetchHoldsOutOfTheRead) {
    testing::TempDir dir;
    CountingStore origin;
    const auto chunks = some_chunks(8, 65536);
    const Manifest m = packed_memory(origin, chunks);
    {
        auto cache = ChunkCache::open(dir.path(), 64 << 20, origin, std::chrono::minutes(10));
        ASSERT_TRUE(cache) << cache.error().message;
        ChunkedMemory memory(m, **cache, 8);
        EXPECT_EQ(delivered(memory, m.working_set).size(), chunks.size());
        EXPECT_EQ(origin.ranges(), 1);
        EXPECT_EQ(origin.total(), 0);
        (*cache)->flush();
        EXPECT_EQ((*cache)->counts().fetched, chunks.size());
    }
    {
        auto cache = ChunkCache::open(dir.path(), 64 << 20, origin, std::chrono::minutes(10));
        ASSERT_TRUE(cache) << cache.error().message;
        ChunkedMemory memory(m, **cache, 8);
        EXPECT_EQ(delivered(memory, m.working_set).size(), chunks.size());
        EXPECT_EQ(origin.ranges(), 1) << "a warm cache reads nothing";
        EXPECT_EQ((*cache)->counts().hits, chunks.size());
    }
    testing::TempDir empty;
    auto cache = ChunkCache::open(empty.path(), 64 << 20, origin, std::chrono::milliseconds(300));
    ASSERT_TRUE(cache) << cache.error().message;
    const ChunkId busy = chunk_id_of(chunks[0]);
    // The lock files are made as a cache first uses them.
    ASSERT_TRUE((*cache)->get(chunk_id_of(chunks[1]), chunks[1].size()));
    const int gets_before = origin.total();
    auto others = others_lock(empty.path(), busy);
    ASSERT_TRUE(others.taken);
    Unpacked got = (*cache)->get_packed(m.packs[0].id, 0, m.packs[0].chunks);
    EXPECT_EQ(got.chunks[0], nullptr) << "another's fetch holds it";
    EXPECT_EQ(got.chunks[1], nullptr) << "in the cache already: get() reads and checks it";
    for (size_t i = 2; i < chunks.size(); ++i) ASSERT_NE(got.chunks[i], nullptr) << i;
    EXPECT_EQ(*got.chunks[5], chunks[5]);
    EXPECT_EQ(got.reads, 1u);
    EXPECT_EQ(got.bytes,
              m.packs[0].bytes() - m.packs[0].chunks[0].stored - m.packs[0].chunks[1].stored)
        << "the range starts at the first chunk it fetches";
    EXPECT_EQ(origin.total(), gets_before);
}

// Two chunks of a pack whose names share their first two bytes share a lock of the cache's
// 65,536: both come from the one read, the second without a lock of its own (as get() fetches
// one whose byte this process holds), both kept.
TEST(SnapshotStore, TwoChunksOfAPackThatShareALockComeFromTheOneRead) {
    std::map<off_t, std::vector<uint8_t>> by_lock;
    std::vector<std::vector<uint8_t>> pair;
    for (uint32_t n = 0; pair.empty(); ++n) {
        std::vector<uint8_t> c(4096, 0);
        std::memcpy(c.data(), &n, sizeof n);
        const off_t lock = ChunkCache::lock_byte(chunk_id_of(c));
        if (auto it = by_lock.find(lock); it != by_lock.end())
            pair = {it->second, c};
        else
            by_lock.emplace(lock, std::move(c));
    }
    testing::TempDir dir;
    CountingStore origin;
    const Manifest m = packed_memory(origin, pair);
    {
        auto cache = ChunkCache::open(dir.path(), 64 << 20, origin, std::chrono::minutes(10));
        ASSERT_TRUE(cache) << cache.error().message;
        Unpacked got = (*cache)->get_packed(m.packs[0].id, 0, m.packs[0].chunks);
        ASSERT_NE(got.chunks[0], nullptr);
        ASSERT_NE(got.chunks[1], nullptr);
        EXPECT_EQ(*got.chunks[1], pair[1]);
        EXPECT_EQ(got.reads, 1u);
        (*cache)->flush();
        EXPECT_EQ((*cache)->counts().fetched, 2u);
    }
    auto cache = ChunkCache::open(dir.path(), 64 << 20, origin, std::chrono::minutes(10));
    ASSERT_TRUE(cache) << cache.error().message;
    for (const auto& c : pair) ASSERT_TRUE((*cache)->get(chunk_id_of(c), c.size()));
    EXPECT_EQ((*cache)->counts().hits, 2u) << "both kept";
    EXPECT_EQ(origin.total(), 0);
    EXPECT_EQ(origin.ranges(), 1);
}

// Push's packs: at most kMaxPacks of them and the chunks the manifest's bound leaves, the rest of
// the working set in none; and a memory file that no longer holds the chunks it was cut into is
// refused, not packed.
TEST(SnapshotStore, PushPacksWithinTheManifestsBoundsAndChecksWhatItPacks) {
    testing::TempDir dir;
    constexpr uint64_t kPages = kMaxPacks + 76;
    const std::string path = dir.path() + "/mem";
    Manifest m;
    m.chunk_size = 4096;
    m.state = {100, {chunk_id_of(bytes_of("a state file"))}};
    m.memory.bytes = kPages * 4096;
    {
        std::vector<uint8_t> memory(m.memory.bytes);
        for (uint64_t p = 0; p < kPages; ++p) {
            std::memcpy(memory.data() + p * 4096, &p, sizeof p);
            m.memory.chunks.push_back(chunk_id_of(std::span(memory).subspan(p * 4096, 4096)));
        }
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(memory.data()),
                   static_cast<std::streamsize>(memory.size()));
    }
    m.working_set = {{0, kPages, false}};
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    auto pack = [&](uint64_t most, uint64_t most_chunks) {
        Manifest packed = m;
        PushCounts counts;
        auto made =
            pack_working_set(packed, fd.get(), nullptr, 0, most, most_chunks, nullptr, counts);
        EXPECT_TRUE(made) << made.error().message;
        EXPECT_EQ(counts.packs, packed.packs.size());
        return packed;
    };
    const Manifest one_each = pack(4096, UINT64_MAX);  // a pack a chunk: kMaxPacks, then none
    EXPECT_EQ(one_each.packs.size(), kMaxPacks);
    EXPECT_EQ(one_each.packs.back().chunks[0].id, m.memory.chunks[kMaxPacks - 1]);
    auto read_back = parse_manifest(encode_manifest(one_each));
    ASSERT_TRUE(read_back) << read_back.error().message;
    EXPECT_EQ(*read_back, one_each);
    const Manifest bounded = pack(kMaxPackBytes, 10);
    ASSERT_EQ(bounded.packs.size(), 1u);
    EXPECT_EQ(bounded.packs[0].chunks.size(), 10u);
    EXPECT_EQ(bounded.packs[0].bytes(), 10u * 4096);
    EXPECT_EQ(bounded.packs[0].chunks[0].sum, m.memory.chunks[0]) << "as it is: its name";
    {
        // Compressed, each chunk's sum is its frame's.
        Manifest compressed = m;
        PushCounts counts;
        ASSERT_TRUE(
            pack_working_set(compressed, fd.get(), nullptr, 3, kMaxPackBytes, 4, nullptr, counts));
        ASSERT_EQ(compressed.packs.size(), 1u);
        for (const auto& e : compressed.packs[0].chunks) {
            EXPECT_LT(e.stored, e.length);
            ASSERT_TRUE(e.sum);
            EXPECT_NE(*e.sum, e.id);
        }
    }

    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(5 * 4096 + 100);
        f.put('x');
    }
    Manifest changed = m;
    PushCounts counts;
    auto refused =
        pack_working_set(changed, fd.get(), nullptr, 0, kMaxPackBytes, UINT64_MAX, nullptr, counts);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("changed while it was pushed"), std::string::npos)
        << refused.error().message;
}

}  // namespace
}  // namespace ember::snapshot
