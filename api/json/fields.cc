#include "api/json/fields.h"

namespace ember::json {

std::string type_name(simdjson::dom::element_type type) {
    using T = simdjson::dom::element_type;
    switch (type) {
        case T::ARRAY: return "an array";
        case T::OBJECT: return "an object";
        case T::INT64:
        case T::UINT64: return "an integer";
        case T::DOUBLE: return "a number";
        case T::STRING: return "a string";
        case T::BOOL: return "a boolean";
        case T::NULL_VALUE: return "null";
    }
    return "a value";
}

Result<simdjson::dom::object> parse_object(std::string_view text) {
    thread_local simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    simdjson::dom::element root;
    if (auto err = parser.parse(padded).get(root); err)
        return fail(std::string("invalid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object o;
    if (root.get_object().get(o))
        return fail("expected a JSON object, got " + type_name(root.type()));
    return o;
}

Result<std::optional<simdjson::dom::element>> Fields::find(const char* key) {
    seen_.insert(key);
    simdjson::dom::element value;
    if (object_.at_key(key).get(value) != simdjson::SUCCESS) return std::nullopt;
    if (value.is_null()) return std::nullopt;
    return value;
}

template <typename T>
Result<std::optional<T>> Fields::typed(const char* key, const char* what) {
    auto v = find(key);
    EMBER_TRY(v);
    if (!*v) return std::nullopt;
    T out;
    if ((*v)->get(out))
        return fail(path_of(key) + ": expected " + what + ", got " + type_name((*v)->type()));
    return out;
}

Result<std::optional<std::string>> Fields::string(const char* key) {
    auto s = typed<std::string_view>(key, "a string");
    if (!s || !*s)
        return s ? Result<std::optional<std::string>>(std::nullopt) : std::unexpected(s.error());
    // JSON's \u0000 arrives as a real NUL, which every C string (a path, the kernel command line)
    // would end at: "/vmlinux\u0000/etc/shadow" would be taken as "/vmlinux".
    if ((*s)->find('\0') != std::string_view::npos)
        return fail(path_of(key) + ": must not contain a NUL character (\\u0000)");
    return std::string(**s);
}

Result<std::optional<uint64_t>> Fields::u64(const char* key) {
    auto v = find(key);
    EMBER_TRY(v);
    if (!*v) return std::nullopt;
    uint64_t n;
    if ((*v)->get_uint64().get(n)) {
        if ((*v)->is_int64()) return fail(path_of(key) + ": must not be negative");
        return fail(path_of(key) + ": expected an unsigned integer, got " +
                    type_name((*v)->type()));
    }
    return n;
}

Result<std::optional<uint32_t>> Fields::u32(const char* key) {
    auto v = u64(key);
    EMBER_TRY(v);
    if (!*v) return std::nullopt;
    if (**v > UINT32_MAX) return fail(path_of(key) + ": " + std::to_string(**v) + " is too large");
    return static_cast<uint32_t>(**v);
}

Result<std::optional<bool>> Fields::boolean(const char* key) {
    return typed<bool>(key, "a boolean");
}

Result<std::optional<simdjson::dom::object>> Fields::object(const char* key) {
    return typed<simdjson::dom::object>(key, "an object");
}

Result<std::optional<simdjson::dom::array>> Fields::array(const char* key) {
    return typed<simdjson::dom::array>(key, "an array");
}

Result<bool> Fields::present(const char* key) {
    auto v = find(key);
    EMBER_TRY(v);
    return v->has_value();
}

Result<void> Fields::finish() const {
    // simdjson keeps every copy of a repeated key and at_key() finds the first; Firecracker
    // (serde) refuses the document, so a later copy can never silently lose.
    std::set<std::string_view> keys;
    for (auto field : object_) {
        if (!keys.insert(field.key).second)
            return fail(path_of(std::string(field.key).c_str()) + ": duplicate field `" +
                        std::string(field.key) + "`");
        if (!seen_.contains(field.key))
            return fail(path_of(std::string(field.key).c_str()) + ": unknown field `" +
                        std::string(field.key) + "`");
    }
    return {};
}

}  // namespace ember::json
