// Custom CPU templates: Firecracker's bitmaps and integers (core/config/cpu_template), the body of
// PUT /cpu-config (api/json/cpu_config_json), and a template over KVM's CPUID
// (vmm/machine/templated_cpu).
#include "core/config/cpu_template.h"

#include <gtest/gtest.h>

#include "api/json/cpu_config_json.h"
#include "vmm/machine/templated_cpu.h"

namespace ember {
namespace {

TEST(CpuTemplateBitmap, EachBitIsClearedSetOrKeptAndAShortOneKeepsTheHighBits) {
    auto b = parse_bitmap("0b1x0", 32, "bitmap");
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(b->mask, 0b101u);
    EXPECT_EQ(b->value, 0b100u);
    EXPECT_EQ(b->applied_to(0xfffffff3u), 0xfffffff6u);
    EXPECT_EQ(b->applied_to(0), 0b100u);
    // Underscores only separate, and 0b may be left out, as Firecracker reads them.
    EXPECT_EQ(*parse_bitmap("0b1_x_0", 32, "bitmap"), *b);
    EXPECT_EQ(*parse_bitmap("1x0", 32, "bitmap"), *b);
    auto full = parse_bitmap("0b" + std::string(64, '1'), 64, "bitmap");
    ASSERT_TRUE(full);
    EXPECT_EQ(full->mask, ~uint64_t{0});
    // No bits at all keeps every bit.
    EXPECT_EQ(parse_bitmap("0b", 32, "bitmap")->mask, 0u);
    EXPECT_EQ(parse_bitmap("0b___", 32, "bitmap")->mask, 0u);
}

TEST(CpuTemplateBitmap, WhatIsNotABitmapIsRefusedByName) {
    for (const auto& [text, says] : std::initializer_list<std::pair<std::string, std::string>>{
             {"0b10a", "'a' is not 0, 1 or x"},
             {"2", "'2' is not 0, 1 or x"},
             {"0b1\xc3\xa9", "'\\xa9' is not 0, 1 or x"},  // a byte of UTF-8, shown escaped
             {"0b" + std::string(33, 'x'), "more than 32 bits"}}) {
        auto b = parse_bitmap(text, 32, "cpuid_modifiers[0].modifiers[0].bitmap");
        ASSERT_FALSE(b) << text;
        EXPECT_NE(b.error().message.find("cpuid_modifiers[0].modifiers[0].bitmap: " + says),
                  std::string::npos)
            << b.error().message;
    }
}

TEST(CpuTemplateInteger, HexOrBinaryAsFirecrackerTakesThemAndDecimalForCapabilities) {
    EXPECT_EQ(*parse_template_integer("0x10a", 0xffffffff, "addr"), 0x10au);
    EXPECT_EQ(*parse_template_integer("0b101", 0xffffffff, "addr"), 5u);
    for (const char* bad : {"", "56", "0X10", "0x", "0x1g", "-1", "0x100000000", " 0x1", "0x1 "})
        EXPECT_FALSE(parse_template_integer(bad, 0xffffffff, "addr")) << bad;
    auto message = parse_template_integer("0x100000000", 0xffffffff, "addr");
    EXPECT_NE(message.error().message.find(
                  "addr: \"0x100000000\" is not a 0x (or 0b) number of at most 4294967295"),
              std::string::npos)
        << message.error().message;
    EXPECT_EQ(*parse_decimal("121", 0xffffffff, "c"), 121u);
    for (const char* bad : {"", "0x79", "-1", "4294967296", "12a"})
        EXPECT_FALSE(parse_decimal(bad, 0xffffffff, "c")) << bad;
}

// The x86 parts of Firecracker's own example template.
TEST(CpuConfigJson, FirecrackersExampleReadsAsItSays) {
    auto t = json::parse_cpu_config(R"({
        "kvm_capabilities": ["!56"],
        "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
            {"register": "eax", "bitmap": "0bxxxx000000000011xx00011011110010"}]}],
        "msr_modifiers": [{"addr": "0x10a",
            "bitmap": "0b0000000000000000000000000000000000000000000000000000000000000000"}]})");
    ASSERT_TRUE(t) << t.error().message;
    ASSERT_EQ(t->kvm_capabilities.size(), 1u);
    EXPECT_EQ(t->kvm_capabilities[0].capability, 56u);
    EXPECT_TRUE(t->kvm_capabilities[0].removed);
    ASSERT_EQ(t->cpuid_modifiers.size(), 1u);
    const auto& leaf = t->cpuid_modifiers[0];
    EXPECT_EQ(leaf.leaf, 1u);
    ASSERT_EQ(leaf.modifiers.size(), 1u);
    EXPECT_EQ(leaf.modifiers[0].reg, CpuidRegister::Eax);
    // As Firecracker's documentation reads the bitmap: these set, these cleared, the rest kept.
    EXPECT_EQ(leaf.modifiers[0].bitmap.mask & leaf.modifiers[0].bitmap.value,
              0b00000000000000110000011011110010u);
    EXPECT_EQ(leaf.modifiers[0].bitmap.mask & ~leaf.modifiers[0].bitmap.value & 0xffffffffu,
              0b00001111111111000011100100001101u);
    ASSERT_EQ(t->msr_modifiers.size(), 1u);
    EXPECT_EQ(t->msr_modifiers[0].addr, 0x10au);
    EXPECT_EQ(t->msr_modifiers[0].bitmap.mask, ~uint64_t{0});
    EXPECT_TRUE(json::parse_cpu_config("{}"));
}

// What ember's client sends (to_json) is what the server reads back.
TEST(CpuConfigJson, ATemplateWrittenOutReadsBackTheSame) {
    auto t = json::parse_cpu_config(R"({"kvm_capabilities": ["121", "!56"],
        "cpuid_modifiers": [{"leaf": "0x80000001", "subleaf": "0x0", "flags": 1, "modifiers": [
            {"register": "edx", "bitmap": "0b1x0"}, {"register": "ebx", "bitmap": "0b0"}]}],
        "msr_modifiers": [{"addr": "0xc0000080", "bitmap": "0b1_0000_0000_x"}]})");
    ASSERT_TRUE(t) << t.error().message;
    const std::string written = json::to_json(*t);
    EXPECT_NE(written.find(R"("kvm_capabilities":["121","!56"])"), std::string::npos) << written;
    EXPECT_NE(written.find(R"("bitmap":"0b)" + std::string(29, 'x') + R"(1x0")"), std::string::npos)
        << written;
    auto again = json::parse_cpu_config(written);
    ASSERT_TRUE(again) << again.error().message << "\n" << written;
    EXPECT_EQ(json::to_json(*again), written);
    EXPECT_EQ(again->msr_modifiers[0].bitmap, t->msr_modifiers[0].bitmap);
}

TEST(CpuConfigJson, ABodyOverItsBoundsIsRefused) {
    std::string many = R"({"msr_modifiers": [)";
    for (int i = 0; i < 257; ++i)
        many += std::string(i ? "," : "") + R"({"addr": "0x10", "bitmap": "0b1"})";
    many += "]}";
    auto t = json::parse_cpu_config(many);
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message.find("msr_modifiers: more than 256 entries"), std::string::npos)
        << t.error().message;
}

TEST(TemplatedCpuid, BitmapsAndFlagsGoOverKvmsLeafOfTheSameLeafAndSubleaf) {
    kvm_cpuid_entry2 one{};
    one.function = 1;
    one.ecx = 0x00002000;
    kvm_cpuid_entry2 seven{};
    seven.function = 7;
    seven.index = 0;
    seven.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    seven.eax = 1;  // its highest subleaf
    seven.ebx = 0xffffffff;
    kvm_cpuid_entry2 seven_one = seven;
    seven_one.index = 1;
    seven_one.ebx = 0;
    CpuTemplate t;
    t.cpuid_modifiers = {
        {.leaf = 1,
         .subleaf = 0,
         .flags = 0,
         .modifiers = {{CpuidRegister::Ecx, *parse_bitmap("0b0x_xxxx_xxxx_xxx1", 32, "b")}}},
        {.leaf = 7,
         .subleaf = 1,
         .flags = 1,
         .modifiers = {{CpuidRegister::Ebx, *parse_bitmap("0b1", 32, "b")}}},
    };
    const auto out = templated_cpuid({one, seven, seven_one}, t);
    ASSERT_TRUE(out) << out.error().message;
    ASSERT_EQ(out->size(), 3u);
    EXPECT_EQ((*out)[0].ecx, 0x1u);
    EXPECT_EQ((*out)[1].ebx, 0xffffffffu) << "subleaf 0 is not subleaf 1";
    EXPECT_EQ((*out)[2].ebx, 0x1u);
    EXPECT_EQ((*out)[2].flags, 1u);
}

// A typo must not pass for a change: a leaf KVM does not offer is refused, in Firecracker's words.
TEST(TemplatedCpuid, ALeafKvmDoesNotOfferIsRefused) {
    kvm_cpuid_entry2 one{};
    one.function = 1;
    CpuTemplate t;
    t.cpuid_modifiers = {{.leaf = 0x8000001, .subleaf = 0, .flags = 0, .modifiers = {}}};
    const auto out = templated_cpuid({one}, t);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().message,
              "cpu-config: Template changes a CPUID entry not supported by KVM: Leaf: 0x8000001, "
              "Subleaf: 0x0");
}

}  // namespace
}  // namespace ember
