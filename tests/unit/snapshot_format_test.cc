#include <gtest/gtest.h>

#include <cstring>

#include "snapshot/format.h"

namespace ember::snapshot {
namespace {

const uint32_t kKnown[] = {1, 2, 3};

std::vector<uint8_t> sample() {
    Writer w;
    std::vector<uint8_t> a = {1, 2, 3}, b = {9};
    w.add(1, 1, a);
    w.add(2, 7, b);
    w.add(2, 7, a);
    w.add(99 | kOptional, 1, b);  // from a newer ember: skippable
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

}  // namespace
}  // namespace ember::snapshot
