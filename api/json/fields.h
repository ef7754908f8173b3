// Typed, checked access to one JSON object's fields, with messages that name the field by its path
// ("machine-config.vcpu_count: ..."). finish() rejects any field that was not asked for, so an
// unknown or misspelt field is an error, not silently ignored, and any field given twice. null
// counts as absent; a string holding a NUL is refused. A missing, unknown or repeated field's
// message holds Firecracker's own words for it ("missing field `vcpu_count`", "duplicate field
// `vcpu_count`"), which its clients and tests match on.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/error.h"
#include "core/json/document.h"

namespace ember::json {

class Fields {
  public:
    // `object` must outlive the Fields.
    Fields(const Object& object, std::string path) : object_(&object), path_(std::move(path)) {}

    Result<std::optional<std::string>> string(const char* key);
    Result<std::optional<uint64_t>> u64(const char* key);
    Result<std::optional<uint32_t>> u32(const char* key);
    Result<std::optional<bool>> boolean(const char* key);
    // nullptr when absent.
    Result<const Object*> object(const char* key);
    Result<const Array*> array(const char* key);
    // Whether the field is there (and not null), whatever its type.
    Result<bool> present(const char* key);

    // An error unless the field is present.
    template <typename T>
    Result<T> required(Result<std::optional<T>> value, const char* key) const {
        EMBER_TRY(value);
        if (!*value) return fail(path_of(key) + ": missing field `" + key + "`");
        return **value;
    }

    // An error naming the first field nobody asked for.
    Result<void> finish() const;

    std::string path_of(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  private:
    // The field, or nullptr when it is absent or null.
    const Value* find(const char* key);
    // The field if it is a `type`, nullptr when absent, or "<path>: expected <what>, got <type>".
    Result<const Value*> typed(const char* key, Type type, const char* what);

    const Object* object_;
    std::string path_;
    std::set<std::string, std::less<>> seen_;
};

// Parses text that must be one JSON object, with a message for malformed JSON or another type.
Result<Object> parse_object(std::string_view text);

// Moves an optional field into `out`, leaving the default when absent.
template <typename T, typename U>
Result<void> take(Result<std::optional<T>> value, U& out) {
    EMBER_TRY(value);
    if (!*value) return {};
    if constexpr (std::is_same_v<U, std::optional<T>>)
        out = std::move(*value);
    else
        out = std::move(**value);
    return {};
}

}  // namespace ember::json
