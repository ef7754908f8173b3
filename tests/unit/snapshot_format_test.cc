#include <gtest/gtest.h>

#include <cstring>

#include "core/devices/i8042.h"
#include "snapshot/format.h"
#include "virtio/mmio/persist.h"

namespace ember::snapshot {
namespace {

const StateSection kKnown[] = {{1, "one"}, {2, "two", 7}, {3, "three"}};

std::vector<uint8_t> sample() {
    Writer w;
    std::vector<uint8_t> a = {1, 2, 3}, b = {9};
    w.add(1, 1, a);
    w.add(2, 7, b);
    w.add(2, 7, a);
    w.add(99 | kOptional, 1, b);  // from a newer ember: skippable
    w.add(3 | kOptional, 2, b);   // a kind this reader knows, in a newer layout: skippable too
    return w.finish();
}

std::string error_of(std::span<const uint8_t> file) {
    auto r = Reader::parse(file, kKnown);
    return r ? "(parsed)" : r.error().message;
}

TEST(SnapshotFormat, RoundTripsSectionsAndSkipsUnknownOptionalOnes) {
    auto file = sample();
    auto r = Reader::parse(file, kKnown);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->format_version(), kFormatVersion);
    EXPECT_EQ(r->sections().size(), 3u);
    auto one = r->one(1);
    ASSERT_TRUE(one);
    EXPECT_EQ(std::vector<uint8_t>(one->payload.begin(), one->payload.end()),
              (std::vector<uint8_t>{1, 2, 3}));
    EXPECT_EQ(r->all(2).size(), 2u);
    EXPECT_EQ(r->all(2)[0].version, 7u);
    EXPECT_FALSE(r->one(2)) << "two of them";
    EXPECT_FALSE(r->one(3)) << "none of them";
    EXPECT_EQ(r->skipped(), 2u);
}

TEST(SnapshotFormat, EveryCorruptionIsAClearError) {
    auto good = sample();
    EXPECT_NE(error_of(std::span(good).first(10)).find("truncated"), std::string::npos);
    EXPECT_NE(error_of(std::span(good).first(good.size() - 1)).find("checksum"), std::string::npos);
    auto flipped = good;
    flipped[30] ^= 0x40;
    EXPECT_NE(error_of(flipped).find("checksum mismatch"), std::string::npos);
    auto foreign = good;
    foreign[0] = 'X';
    EXPECT_NE(error_of(foreign).find("bad magic"), std::string::npos);
    auto newer = good;
    newer[8] = static_cast<uint8_t>(kFormatVersion + 1);
    EXPECT_NE(error_of(newer).find("newer than this ember reads"), std::string::npos);
    auto zero = good;
    zero[8] = 0;
    EXPECT_NE(error_of(zero).find("format version 0 is not one ember wrote"), std::string::npos);
    EXPECT_NE(error_of(std::vector<uint8_t>{}).find("truncated"), std::string::npos);
}

TEST(SnapshotFormat, UnknownRequiredSectionAndLyingLengthsAreRefused) {
    Writer unknown;
    std::vector<uint8_t> p = {1};
    unknown.add(42, 1, p);
    EXPECT_NE(error_of(unknown.finish()).find("required section 42"), std::string::npos);

    // A section whose length runs past the end, with a checksum that matches the lie.
    Writer w;
    w.add(1, 1, p);
    auto file = w.finish();
    file.resize(file.size() - 8);
    uint64_t huge = 1ull << 40;
    std::memcpy(file.data() + 16 + 8, &huge, 8);
    uint64_t sum = fnv1a64(file);
    size_t body = file.size();
    file.resize(body + 8);
    std::memcpy(file.data() + body, &sum, 8);
    EXPECT_NE(error_of(file).find("runs past the end"), std::string::npos);
}

TEST(SnapshotFormat, ASectionNewerThanItsKindIsRefusedAndSoIsVersionZero) {
    std::vector<uint8_t> p = {1};
    Writer newer;
    newer.add(2, 8, p);
    EXPECT_EQ(error_of(newer.finish()),
              "snapshot two section has version 8; this ember reads versions 1 to 7");
    Writer zero;
    zero.add(1, 0, p);
    EXPECT_EQ(error_of(zero.finish()),
              "snapshot one section has version 0; this ember reads versions 1 to 1");
    Writer older;
    older.add(2, 6, p);
    EXPECT_EQ(error_of(older.finish()), "(parsed)");
}

TEST(SnapshotFormat, ByteReaderIsBoundsChecked) {
    ByteWriter w;
    w.put<uint32_t>(7);
    w.put_string("rootfs");
    ByteReader r(w.bytes(), "test");
    EXPECT_EQ(*r.get<uint32_t>(), 7u);
    EXPECT_EQ(*r.get_string(), "rootfs");
    EXPECT_TRUE(r.done());
    EXPECT_FALSE(r.get<uint8_t>());
    std::vector<uint8_t> lying = {0xff, 0xff, 0xff, 0x7f, 'x'};
    ByteReader l(lying, "test");
    auto s = l.get_string();
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("shorter than its contents"), std::string::npos);
}

// Found by fuzz/snapshot_state_fuzz: a flag byte of 2 was read as true and written back as 1, so a
// file was taken that ember would never have written (and a queue's flags were copied raw into a
// bool, which is undefined).
TEST(SnapshotFormat, AFlagIsZeroOrOneAndNothingElse) {
    const std::vector<uint8_t> bytes = {0, 1, 2};
    ByteReader r(bytes, "test");
    EXPECT_EQ(r.get_flag(), false);
    EXPECT_EQ(r.get_flag(), true);
    auto two = r.get_flag();
    ASSERT_FALSE(two);
    EXPECT_NE(two.error().message.find("a flag holds 2, not 0 or 1"), std::string::npos);

    I8042State state;
    std::vector<uint8_t> i8042 = encode_state(state, state_sections::kI8042.version);
    i8042[4] = 2;  // last_write_was_command
    EXPECT_FALSE(decode_state<I8042State>(i8042, state_sections::kI8042.version, "i8042 section"));
}

// Found by fuzz/snapshot_state_fuzz (UBSan): an empty payload's null data went to memcpy.
TEST(SnapshotFormat, AnEmptySectionIsWrittenAndReadBack) {
    Writer w;
    w.add(1, 1, std::span<const uint8_t>());
    const auto file = w.finish();
    auto r = Reader::parse(file, kKnown);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->one(1)->payload.empty());
}

TEST(SnapshotFormat, VirtioQueuesKeepTheirFirstLayoutAndRefuseWhatWasNeverWritten) {
    virtio::TransportState t;
    virtio::QueueState q;
    q.ready = true;
    q.desc_table = 0x1000;
    q.indirect = true;
    t.queues = {q};
    // Version 2 adds the device's own state, length first, after the transport's: here none, so
    // version 1's bytes are all but its last four.
    const std::vector<uint8_t> v2 = virtio::encode({t, {}});
    ASSERT_EQ(std::vector<uint8_t>(v2.end() - 4, v2.end()), std::vector<uint8_t>(4, 0));
    const std::vector<uint8_t> bytes(v2.begin(), v2.end() - 4);
    // The queue as the first files held it: the struct's own 40 bytes, padding zeroed.
    std::vector<uint8_t> raw(40, 0);
    const uint16_t max = q.max_size, size = q.size;
    const uint64_t desc = 0x1000;
    std::memcpy(&raw[0], &max, 2);
    std::memcpy(&raw[2], &size, 2);
    raw[4] = 1;  // ready
    std::memcpy(&raw[8], &desc, 8);
    raw[37] = 1;  // indirect
    ASSERT_GE(bytes.size(), raw.size());
    EXPECT_EQ(std::vector<uint8_t>(bytes.end() - 40, bytes.end()), raw);
    auto back = virtio::decode_virtio_section(bytes, 1);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(virtio::encode(*back), v2);
    EXPECT_FALSE(virtio::decode_virtio_section(v2, 1)) << "version 1 has nothing after the queues";
    EXPECT_FALSE(virtio::decode_virtio_section(bytes, 2)) << "version 2 has the device's state";

    auto padded = bytes;
    padded[bytes.size() - 40 + 5] = 1;  // after `ready`
    EXPECT_FALSE(virtio::decode_virtio_section(padded, 1));
    auto flag = bytes;
    flag[bytes.size() - 40 + 37] = 2;  // `indirect`
    EXPECT_FALSE(virtio::decode_virtio_section(flag, 1));
}

}  // namespace
}  // namespace ember::snapshot
