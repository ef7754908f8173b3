#include <gtest/gtest.h>

#include "core/base/bytes.h"
#include "snapshot/machine_state.h"

namespace ember::snapshot {
namespace {

MemoryLayout two_regions() {
    MemoryLayout m;
    m.regions = {{0, 0xd0000000}, {0x100000000, 0x10000000}};
    return m;
}

TEST(MemoryLayoutSection, TheGenerationIdRoundTrips) {
    MemoryLayout m = two_regions();
    m.generation_id = GenerationIdPlace{0xe0040, 3};
    auto back = decode_memory(encode(m), kMemoryLayoutVersion);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->regions.size(), 2u);
    ASSERT_TRUE(back->generation_id);
    EXPECT_EQ(back->generation_id->addr, 0xe0040u);
    EXPECT_EQ(back->generation_id->gsi, 3u);

    m.generation_id.reset();
    back = decode_memory(encode(m), kMemoryLayoutVersion);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_FALSE(back->generation_id);
}

TEST(MemoryLayoutSection, ThePageSizeRoundTripsAndIsFourKiBBeforeVersionThree) {
    MemoryLayout m = two_regions();
    m.page_size = 2 << 20;
    auto back = decode_memory(encode(m), kMemoryLayoutVersion);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->page_size, 2u << 20);

    ByteWriter w;
    put_vector(w, m.regions);
    w.put(uint8_t{0});  // no generation ID
    back = decode_memory(w.bytes(), 2);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->page_size, 4096u);

    m.page_size = 1 << 30;
    auto gigantic = decode_memory(encode(m), kMemoryLayoutVersion);
    ASSERT_FALSE(gigantic);
    EXPECT_NE(gigantic.error().message.find("neither 4 KiB nor 2 MiB"), std::string::npos);
    m.page_size = 2 << 20;
    m.regions = {{0, 0x100000}};  // 1 MiB: half a page
    auto half = decode_memory(encode(m), kMemoryLayoutVersion);
    ASSERT_FALSE(half);
    EXPECT_NE(half.error().message.find("not made of whole"), std::string::npos);
}

// A state file written before ember had ACPI: the regions alone, version 1.
TEST(MemoryLayoutSection, AVersionOneSectionLoadsWithoutAGenerationId) {
    ByteWriter w;
    put_vector(w, two_regions().regions);
    auto back = decode_memory(w.bytes(), 1);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->total(), 0xd0000000u + 0x10000000u);
    EXPECT_FALSE(back->generation_id);
    // Read as version 2 it lacks its flag.
    EXPECT_FALSE(decode_memory(w.bytes(), 2));
}

TEST(MemoryLayoutSection, RefusesWhatItCannotUse) {
    MemoryLayout m = two_regions();
    EXPECT_FALSE(decode_memory(encode(m), 0));
    auto newer = decode_memory(encode(m), kMemoryLayoutVersion + 1);
    ASSERT_FALSE(newer);
    EXPECT_NE(newer.error().message.find("reads versions 1 to 3"), std::string::npos);

    m.generation_id = GenerationIdPlace{0xd0000000 - 8, 3};  // straddles the end of low memory
    auto outside = decode_memory(encode(m), kMemoryLayoutVersion);
    ASSERT_FALSE(outside);
    EXPECT_NE(outside.error().message.find("outside guest memory"), std::string::npos);
    m.generation_id = GenerationIdPlace{0xe0040, 24};
    EXPECT_FALSE(decode_memory(encode(m), kMemoryLayoutVersion));

    m.generation_id.reset();
    auto trailing = encode(m);
    trailing.push_back(0);
    EXPECT_FALSE(decode_memory(trailing, kMemoryLayoutVersion));
    auto bad_flag = encode(m);
    bad_flag.back() = 2;  // the presence flag is 0 or 1
    EXPECT_FALSE(decode_memory(bad_flag, kMemoryLayoutVersion));
}

}  // namespace
}  // namespace ember::snapshot
