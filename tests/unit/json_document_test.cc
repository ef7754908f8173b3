// core/json: ember's JSON reader takes what simdjson takes, refuses what it refuses and reads the
// same values; nesting is bounded; a repeated key is kept for the field reader to refuse.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "core/json/document.h"

namespace ember::json {
namespace {

// The oracle's verdict and ours agree, and where both take the text, the values are the same.
void expect_same_as_simdjson(const std::string& text);

void expect_same_value(simdjson::dom::element theirs, const Value& ours, const std::string& text) {
    using T = simdjson::dom::element_type;
    switch (theirs.type()) {
        case T::NULL_VALUE: EXPECT_TRUE(ours.is_null()) << text; return;
        case T::BOOL: EXPECT_EQ(ours.boolean(), bool(theirs.get_bool())) << text; return;
        case T::INT64:
            EXPECT_EQ(ours.type(), Type::Integer) << text;
            if (int64_t v = theirs.get_int64(); v >= 0)
                EXPECT_EQ(ours.u64(), static_cast<uint64_t>(v)) << text;
            else
                EXPECT_TRUE(ours.is_negative_integer()) << text;
            return;
        case T::UINT64: EXPECT_EQ(ours.u64(), uint64_t(theirs.get_uint64())) << text; return;
        case T::DOUBLE: EXPECT_EQ(ours.type(), Type::Number) << text; return;
        case T::STRING:
            ASSERT_NE(ours.string(), nullptr) << text;
            EXPECT_EQ(*ours.string(), std::string_view(theirs.get_string())) << text;
            return;
        case T::ARRAY: {
            ASSERT_NE(ours.array(), nullptr) << text;
            simdjson::dom::array a = theirs.get_array();
            ASSERT_EQ(ours.array()->size(), a.size()) << text;
            size_t i = 0;
            for (auto e : a) expect_same_value(e, (*ours.array())[i++], text);
            return;
        }
        case T::OBJECT: {
            ASSERT_NE(ours.object(), nullptr) << text;
            simdjson::dom::object o = theirs.get_object();
            ASSERT_EQ(ours.object()->members.size(), o.size()) << text;
            size_t i = 0;
            for (auto [key, value] : o) {
                const Member& m = ours.object()->members[i++];
                EXPECT_EQ(m.key, key) << text;
                expect_same_value(value, m.value, text);
            }
            return;
        }
    }
}

void expect_same_as_simdjson(const std::string& text) {
    simdjson::dom::parser parser;
    simdjson::dom::element theirs;
    const bool they_take = !parser.parse(text).get(theirs);
    auto ours = parse(text);
    ASSERT_EQ(ours.has_value(), they_take)
        << "'" << text << "': " << (ours ? "ours took it" : ours.error().message);
    if (they_take) expect_same_value(theirs, *ours, text);
}

TEST(JsonDocument, TakesAndRefusesWhatSimdjsonDoes) {
    const std::vector<std::string> texts = {
        // Values of each kind, nested.
        R"({"a": 1, "b": [true, false, null], "c": {"d": "e"}, "f": -2.5e3})",
        "[]",
        "{}",
        "0",
        " \t\r\n[ 1 , 2 ]\n",
        R"("plain")",
        "[[[[[]]]]]",
        R"({"a":{"b":{"c":[{}]}}})",
        // Integers at and past each edge.
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "-0",
        "123456789012345678901234567890",
        "01",
        "-01",
        "-",
        "+1",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1E5",
        "1e-5",
        "0.1e-3",
        "-1.5E+3",
        "1e400",
        "-1e400",
        "1e-400",
        "0.0000001e-400",
        "1.7976931348623157e308",
        "1.8e308",
        "00",
        "0x10",
        "1_000",
        "NaN",
        "Infinity",
        // Strings: escapes, surrogates, control characters, UTF-8.
        R"("\" \\ \/ \b \f \n \r \t")",
        R"("\u0041\u00e9\u20ac\ud83d\ude00")",
        R"("\u0000")",
        R"("\ud800")",
        R"("\udc00")",
        R"("\ud800\u0041")",
        R"("\ud800\udbff")",
        R"("\u12")",
        R"("\x41")",
        R"("\a")",
        "\"tab\there\"",
        "\"line\nbreak\"",
        "\"\x7f\"",
        "\"\xc3\xa9\"",
        "\"\xe2\x82\xac\"",
        "\"\xf0\x9f\x98\x80\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xe0\x80\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\"\xc3\"",
        "\"\xe2\x82\"",
        "\"unterminated",
        R"("a" "b")",
        // Structure.
        "",
        "   ",
        "[1,]",
        R"({"a":1,})",
        "[,1]",
        "{,}",
        R"({"a" 1})",
        R"({"a":})",
        "{1:2}",
        R"({'a':1})",
        "[1 2]",
        "1 2",
        "[",
        "]",
        "{",
        "}",
        "[}",
        "{]",
        "nul",
        "tru",
        "falsey",
        "null ",
        "true\x01",
        "\xef\xbb\xbf{}",
        R"({"a":1,"a":2})",
    };
    for (const auto& text : texts) expect_same_as_simdjson(text);
}

TEST(JsonDocument, RefusesNestingDeeperThanItsBound) {
    const std::string deep(kMaxDepth, '[');
    EXPECT_TRUE(parse(deep + std::string(kMaxDepth, ']')));
    auto r = parse(deep + "[" + std::string(kMaxDepth + 1, ']'));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "invalid JSON: nested too deep at byte 128");
    // Far deeper than any stack would hold, refused at the bound, not by running out of stack.
    const std::string hostile(1 << 20, '[');
    EXPECT_FALSE(parse(hostile));
}

TEST(JsonDocument, RefusesValuesThatTakeMoreThanTheirBudget) {
    // 1,000 zeros: 1,001 values of 40 bytes each, from 2,001 bytes of text.
    std::string zeros = "[0";
    for (int i = 1; i < 1000; ++i) zeros += ",0";
    zeros += "]";
    const size_t needed = 1001 * sizeof(Value);
    EXPECT_TRUE(parse(zeros, needed));
    auto r = parse(zeros, needed - 1);
    ASSERT_FALSE(r);
    EXPECT_NE(
        r.error().message.find("values taking more than " + std::to_string(needed - 1) + " bytes"),
        std::string::npos)
        << r.error().message;
    // Strings and keys count with their bytes.
    EXPECT_FALSE(parse(R"({"key": "a long string of text"})", 3 * sizeof(Value)));
}

TEST(JsonDocument, KeepsARepeatedKeyAndFindsTheFirst) {
    auto r = parse(R"({"a": 1, "a": 2})");
    ASSERT_TRUE(r);
    const Object* o = r->object();
    ASSERT_NE(o, nullptr);
    ASSERT_EQ(o->members.size(), 2u);
    EXPECT_EQ(o->find("a")->u64(), 1u);
    EXPECT_EQ(o->find("b"), nullptr);
}

TEST(JsonDocument, SaysWhereTheTextWentWrong) {
    auto r = parse(R"({"a": 1,})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "invalid JSON: expected a key at byte 8");
    EXPECT_EQ(parse("").error().message,
              "invalid JSON: the text ends where a value should be at byte 0");
    EXPECT_EQ(parse("\"\xff\"").error().message, "invalid JSON: not UTF-8 at byte 1");
}

TEST(JsonDocument, NamesEachTypeAsMessagesDo) {
    EXPECT_STREQ(type_name(parse("[]")->type()), "an array");
    EXPECT_STREQ(type_name(parse("{}")->type()), "an object");
    EXPECT_STREQ(type_name(parse("7")->type()), "an integer");
    EXPECT_STREQ(type_name(parse("18446744073709551615")->type()), "an integer");
    EXPECT_STREQ(type_name(parse("7.5")->type()), "a number");
    EXPECT_STREQ(type_name(parse("\"s\"")->type()), "a string");
    EXPECT_STREQ(type_name(parse("true")->type()), "a boolean");
    EXPECT_STREQ(type_name(parse("null")->type()), "null");
}

}  // namespace
}  // namespace ember::json
