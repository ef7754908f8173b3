// The one codec of described state (core/base/state_codec.h): what a section of each version holds,
// and what it refuses.
#include <gtest/gtest.h>

#include <concepts>
#include <cstdint>
#include <deque>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/base/described.h"
#include "core/base/state_codec.h"

namespace ember {
namespace {

struct Inner {
    uint16_t a = 0;
    bool b = false;
};
struct Outer {
    uint32_t first = 7;
    std::deque<uint8_t> bytes;
    std::optional<Inner> inner;
    uint64_t added_in_2 = 42;
};

void describe_state(Is<Inner> auto& s, auto&& v) {
    v(StateField{"a"}, s.a);
    v(StateField{"b"}, s.b);
}
void describe_state(Is<Outer> auto& s, auto&& v) {
    v(StateField{"first"}, s.first);
    v(StateField{.name = "bytes", .max = 4}, s.bytes);
    v(StateField{"inner"}, s.inner);
    v(StateField{.name = "added_in_2", .since = 2}, s.added_in_2);
}

TEST(StateCodec, EachVersionHoldsItsFieldsAndAnOlderOneLeavesTheNewDefault) {
    Outer o{1, {9, 8}, Inner{0x1234, true}, 5};
    const auto v2 = encode_state(o, 2);
    // 4 + (4 + 2) + (1 + 2 + 1) + 8
    EXPECT_EQ(v2.size(), 22u);
    auto back = decode_state<Outer>(v2, 2, "test section");
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->first, 1u);
    EXPECT_EQ(back->bytes, (std::deque<uint8_t>{9, 8}));
    ASSERT_TRUE(back->inner);
    EXPECT_EQ(back->inner->a, 0x1234);
    EXPECT_TRUE(back->inner->b);
    EXPECT_EQ(back->added_in_2, 5u);

    const auto v1 = encode_state(o, 1);
    EXPECT_EQ(v1.size(), 14u) << "version 1 has no added_in_2";
    auto old = decode_state<Outer>(v1, 1, "test section");
    ASSERT_TRUE(old) << old.error().message;
    EXPECT_EQ(old->added_in_2, 42u) << "a field the version lacks keeps its default";
    EXPECT_FALSE(decode_state<Outer>(v1, 2, "test section")) << "a version 1 section read as 2";
}

TEST(StateCodec, ABoundAFlagAndLeftoverBytesAreRefused) {
    Outer o;
    o.bytes = {1, 2, 3, 4, 5};
    auto too_long = decode_state<Outer>(encode_state(o, 2), 2, "test section");
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().message, "test section: 5 bytes, more than 4");

    o.bytes.clear();
    o.inner = Inner{};
    auto bytes = encode_state(o, 2);
    bytes[4 + 4 + 1 + 2] = 2;  // inner.b
    auto flag = decode_state<Outer>(bytes, 2, "test section");
    ASSERT_FALSE(flag);
    EXPECT_NE(flag.error().message.find("a flag holds 2"), std::string::npos);

    auto longer = encode_state(Outer{}, 2);
    longer.push_back(0);
    auto trailing = decode_state<Outer>(longer, 2, "test section");
    ASSERT_FALSE(trailing);
    EXPECT_EQ(trailing.error().message, "test section: 1 bytes too many");
    longer.resize(longer.size() - 2);
    EXPECT_FALSE(decode_state<Outer>(longer, 2, "test section")) << "one byte short";
}

}  // namespace
}  // namespace ember
