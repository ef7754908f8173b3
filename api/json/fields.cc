#include "api/json/fields.h"

namespace ember::json {

Result<Object> parse_object(std::string_view text) {
    auto root = parse(text);
    EMBER_TRY(root);
    auto* o = root->object();
    if (!o) return fail(std::string("expected a JSON object, got ") + type_name(root->type()));
    return std::move(*o);
}

const Value* Fields::find(const char* key) {
    seen_.insert(key);
    const Value* value = object_->find(key);
    return value && !value->is_null() ? value : nullptr;
}

Result<const Value*> Fields::typed(const char* key, Type type, const char* what) {
    const Value* v = find(key);
    if (v && v->type() != type)
        return fail(path_of(key) + ": expected " + what + ", got " + type_name(v->type()));
    return v;
}

Result<std::optional<std::string>> Fields::string(const char* key) {
    auto v = typed(key, Type::String, "a string");
    EMBER_TRY(v);
    if (!*v) return std::nullopt;
    const std::string& s = *(*v)->string();
    // JSON's \u0000 arrives as a real NUL, which every C string (a path, the kernel command line)
    // would end at: "/vmlinux\u0000/etc/shadow" would be taken as "/vmlinux".
    if (s.find('\0') != std::string::npos)
        return fail(path_of(key) + ": must not contain a NUL character (\\u0000)");
    return s;
}

Result<std::optional<uint64_t>> Fields::u64(const char* key) {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (auto n = v->u64()) return *n;
    if (v->is_negative_integer()) return fail(path_of(key) + ": must not be negative");
    return fail(path_of(key) + ": expected an unsigned integer, got " + type_name(v->type()));
}

Result<std::optional<uint32_t>> Fields::u32(const char* key) {
    auto v = u64(key);
    EMBER_TRY(v);
    if (!*v) return std::nullopt;
    if (**v > UINT32_MAX) return fail(path_of(key) + ": " + std::to_string(**v) + " is too large");
    return static_cast<uint32_t>(**v);
}

Result<std::optional<bool>> Fields::boolean(const char* key) {
    auto v = typed(key, Type::Boolean, "a boolean");
    EMBER_TRY(v);
    if (!*v) return std::nullopt;
    return (*v)->boolean();
}

Result<const Object*> Fields::object(const char* key) {
    auto v = typed(key, Type::Object, "an object");
    EMBER_TRY(v);
    return *v ? (*v)->object() : nullptr;
}

Result<const Array*> Fields::array(const char* key) {
    auto v = typed(key, Type::Array, "an array");
    EMBER_TRY(v);
    return *v ? (*v)->array() : nullptr;
}

Result<bool> Fields::present(const char* key) {
    return find(key) != nullptr;
}

Result<void> Fields::finish() const {
    // A repeated key is kept in the object; Firecracker (serde) refuses the document, so a later
    // copy can never silently lose.
    std::set<std::string_view> keys;
    for (const auto& [key, value] : object_->members) {
        if (!keys.insert(key).second)
            return fail(path_of(key.c_str()) + ": duplicate field `" + key + "`");
        if (!seen_.contains(key))
            return fail(path_of(key.c_str()) + ": unknown field `" + key + "`");
    }
    return {};
}

}  // namespace ember::json
