// core/json: JSON text read into a tree of values, for every reader of JSON in ember: API bodies
// and the config file (api/json), seccomp filters, store manifests and the Uffd handshake. It takes
// what RFC 8259 allows and nothing else, as strictly as simdjson, which the tests and a fuzz
// target hold it against: UTF-8 only, no unpaired surrogate, integers from -2^63 to 2^64-1, no
// number that overflows a double. Nesting is bounded (at 128, where simdjson allows 1024), so
// hostile text cannot exhaust the stack, and so is the memory the values take.
//
// ember's own rather than simdjson's (still the tests' oracle): Debian ships simdjson only as a
// shared library, which needs the shared libstdc++, and those two cost every ember process about a
// millisecond of dynamic loading and tens of KiB of relocated pages (perf/startup, perf/density).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/base/error.h"

namespace ember::json {

class Value;
struct Member;

using Array = std::vector<Value>;

// An object's members in the text's order, a repeated key kept: json::Fields refuses it by name,
// as Firecracker's serde refuses the document.
struct Object {
    std::vector<Member> members;

    // The first member named `key`, or nullptr.
    const Value* find(std::string_view key) const;
    // That member as the type asked for; nothing when it is absent or another type.
    const std::string* find_string(std::string_view key) const;
    const Array* find_array(std::string_view key) const;
    const Object* find_object(std::string_view key) const;
    std::optional<uint64_t> find_u64(std::string_view key) const;
};

enum class Type { Null, Boolean, Integer, Number, String, Array, Object };

class Value {
  public:
    Value() = default;  // null
    explicit Value(bool v);
    explicit Value(int64_t v);
    explicit Value(uint64_t v);
    explicit Value(double v);
    explicit Value(std::string v);
    explicit Value(Array v);
    explicit Value(Object v);

    Type type() const;
    bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
    // An integer from 0 to 2^64-1, as every count, size and address ember reads is.
    std::optional<uint64_t> u64() const;
    bool is_negative_integer() const;
    std::optional<bool> boolean() const;
    const std::string* string() const { return std::get_if<std::string>(&v_); }
    const Array* array() const { return std::get_if<Array>(&v_); }
    const Object* object() const { return std::get_if<Object>(&v_); }
    Object* object() { return std::get_if<Object>(&v_); }

  private:
    std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_;
};

struct Member {
    std::string key;
    Value value;
};

// Here, where an Object's members are a complete type: building the variant may destroy one.
inline Value::Value(bool v) : v_(v) {}
inline Value::Value(int64_t v) : v_(v) {}
inline Value::Value(uint64_t v) : v_(v) {}
inline Value::Value(double v) : v_(v) {}
inline Value::Value(std::string v) : v_(std::move(v)) {}
inline Value::Value(Array v) : v_(std::move(v)) {}
inline Value::Value(Object v) : v_(std::move(v)) {}

// As deep as serde_json, Firecracker's parser, nests.
constexpr size_t kMaxDepth = 128;

// What a document's values may take by default: far more than any body, config or filter file, and
// a bound where a value costs many times the bytes of its text ("0," is 2 bytes, its Value 40).
constexpr size_t kMaxTreeBytes = size_t{64} << 20;

// The one value `text` holds, or "invalid JSON: <what> at byte N". Refused once the values read
// take more than `max_tree_bytes` (each Value, and each string's and key's bytes; not the
// vectors' spare capacity).
Result<Value> parse(std::string_view text, size_t max_tree_bytes = kMaxTreeBytes);

// "an object", "an integer", ...: for messages that say what a field was instead.
const char* type_name(Type type);

}  // namespace ember::json
