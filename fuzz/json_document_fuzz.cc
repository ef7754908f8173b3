// ember's JSON reader (core/json) against simdjson on the same bytes: both take the text or both
// refuse it, a refusal says why, and what both take holds the same values (integers and strings
// exactly, a number as a number). ember's nesting bound is lower than simdjson's (128 against
// 1024): text nested deeper is only checked to be refused by ember.
#include <simdjson.h>

#include <string>
#include <string_view>

#include "core/json/document.h"
#include "fuzz/support/require.h"

using namespace ember;
using fuzz::require;

namespace {

size_t depth_of(simdjson::dom::element e) {
    size_t deepest = 0;
    if (simdjson::dom::array a; !e.get_array().get(a)) {
        for (auto v : a) deepest = std::max(deepest, depth_of(v));
        return deepest + 1;
    }
    if (simdjson::dom::object o; !e.get_object().get(o)) {
        for (auto [key, v] : o) deepest = std::max(deepest, depth_of(v));
        return deepest + 1;
    }
    return 0;
}

void same(simdjson::dom::element theirs, const json::Value& ours) {
    using T = simdjson::dom::element_type;
    switch (theirs.type()) {
        case T::NULL_VALUE: require(ours.is_null(), "null is null"); return;
        case T::BOOL:
            require(ours.boolean() == bool(theirs.get_bool()), "the same boolean");
            return;
        case T::INT64: {
            const int64_t v = theirs.get_int64();
            require(v < 0 ? ours.is_negative_integer() : ours.u64() == static_cast<uint64_t>(v),
                    "the same integer");
            return;
        }
        case T::UINT64:
            require(ours.u64() == uint64_t(theirs.get_uint64()), "the same integer");
            return;
        case T::DOUBLE: require(ours.type() == json::Type::Number, "a number"); return;
        case T::STRING:
            require(ours.string() && *ours.string() == std::string_view(theirs.get_string()),
                    "the same string");
            return;
        case T::ARRAY: {
            simdjson::dom::array a = theirs.get_array();
            require(ours.array() && ours.array()->size() == a.size(), "an array as long");
            size_t i = 0;
            for (auto e : a) same(e, (*ours.array())[i++]);
            return;
        }
        case T::OBJECT: {
            simdjson::dom::object o = theirs.get_object();
            require(ours.object() && ours.object()->members.size() == o.size(),
                    "an object as large");
            size_t i = 0;
            for (auto [key, value] : o) {
                const json::Member& m = ours.object()->members[i++];
                require(m.key == key, "the same key, in the same place");
                same(value, m.value);
            }
            return;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto ours = json::parse(text);
    if (!ours) require(!ours.error().message.empty(), "a refusal says why");
    simdjson::dom::parser parser;
    simdjson::dom::element theirs;
    const bool they_take = !parser.parse(text.data(), text.size()).get(theirs);
    if (they_take && depth_of(theirs) > json::kMaxDepth) {
        require(!ours, "text nested past the bound is refused");
        return 0;
    }
    require(ours.has_value() == they_take, "ember takes what simdjson takes, and only that");
    if (they_take) same(theirs, *ours);
    return 0;
}
