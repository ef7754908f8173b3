// Typed, checked access to one JSON object's fields, with messages that name the field by its path
// ("machine-config.vcpu_count: ..."). finish() rejects any field that was not asked for, so an
// unknown or misspelt field is an error, not silently ignored, and any field given twice. null
// counts as absent; a string holding a NUL is refused. A missing, unknown or repeated field's
// message holds Firecracker's own words for it ("missing field `vcpu_count`", "duplicate field
// `vcpu_count`"), which its clients and tests match on.
#pragma once

#include <simdjson.h>

#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/error.h"

namespace ember::json {

class Fields {
  public:
    Fields(simdjson::dom::object object, std::string path)
        : object_(object), path_(std::move(path)) {}

    Result<std::optional<std::string>> string(const char* key);
    Result<std::optional<uint64_t>> u64(const char* key);
    Result<std::optional<uint32_t>> u32(const char* key);
    Result<std::optional<bool>> boolean(const char* key);
    Result<std::optional<simdjson::dom::object>> object(const char* key);
    Result<std::optional<simdjson::dom::array>> array(const char* key);
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
    Result<std::optional<simdjson::dom::element>> find(const char* key);
    // The field as simdjson type T, or "<path>: expected <what>, got <type>".
    template <typename T>
    Result<std::optional<T>> typed(const char* key, const char* what);

    simdjson::dom::object object_;
    std::string path_;
    std::set<std::string, std::less<>> seen_;
};

// Parses text that must be one JSON object, with a message for malformed JSON or another type.
// The object lives in this thread's parser, reused so that its buffers are allocated once, not
// per request: it is valid until the next call on the same thread.
Result<simdjson::dom::object> parse_object(std::string_view text);

std::string type_name(simdjson::dom::element_type type);

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
