#include "snapshot/config_section.h"

#include <optional>
#include <string>
#include <type_traits>

#include "core/base/bytes.h"
#include "core/config/config_fields.h"

namespace ember::snapshot {
namespace {

// Each list holds at most this many entries, above the virtio slots a VM has (plan_virtio_slots).
constexpr uint32_t kMaxListed = 64;

template <typename T>
void put_value(ByteWriter& w, const T& v);

template <config::Described T>
void put_struct(ByteWriter& w, const T& s) {
    config::describe_in_state_order(s,
                                    [&](const config::Field&, const auto& v) { put_value(w, v); });
}

// A string, a flag or a number as itself; an enumeration by its name; an optional as a flag and
// then its value, except that an optional integer's (bool included) is always there, 0 when
// absent; a list as a count and its entries.
template <typename T>
void put_value(ByteWriter& w, const T& v) {
    if constexpr (config::Described<T>) {
        put_struct(w, v);
    } else if constexpr (config::IsVector<T>::value) {
        w.put(static_cast<uint32_t>(v.size()));
        for (const auto& e : v) put_value(w, e);
    } else if constexpr (config::IsOptional<T>::value) {
        w.put<uint8_t>(v.has_value());
        if constexpr (std::is_integral_v<typename T::value_type>)
            w.put(v.value_or(0));
        else if (v)
            put_value(w, *v);
    } else if constexpr (std::is_same_v<T, std::string>) {
        w.put_string(v);
    } else if constexpr (std::is_same_v<T, bool>) {
        w.put<uint8_t>(v);
    } else if constexpr (std::is_enum_v<T>) {
        w.put_string(std::string(name_of(v)));
    } else {
        w.put(v);
    }
}

template <typename T>
Result<void> get_value(ByteReader& r, uint32_t version, const char* name, T& out);

// A field the section's version did not hold yet keeps its default.
template <config::Described T>
Result<void> get_struct(ByteReader& r, uint32_t version, T& s) {
    Result<void> status;
    config::describe_in_state_order(s, [&](const config::Field& f, auto& v) {
        if (status && f.since <= version) status = get_value(r, version, f.name, v);
    });
    return status;
}

template <typename T>
Result<void> get_value(ByteReader& r, uint32_t version, const char* name, T& out) {
    if constexpr (config::Described<T>) {
        return get_struct(r, version, out);
    } else if constexpr (config::IsVector<T>::value) {
        auto count = r.get<uint32_t>();
        EMBER_TRY(count);
        if (*count > kMaxListed)
            return fail("config section lists more than " + std::to_string(kMaxListed) + " " +
                        name);
        out.clear();
        for (uint32_t i = 0; i < *count; ++i)
            EMBER_TRY(get_value(r, version, name, out.emplace_back()));
        return {};
    } else if constexpr (config::IsOptional<T>::value) {
        auto has = r.get_flag();
        EMBER_TRY(has);
        out.reset();
        typename T::value_type value{};
        if constexpr (std::is_integral_v<typename T::value_type>) {
            EMBER_TRY(read_into(r, value));
            // Written as 0 when absent: anything else is not a file ember wrote.
            if (!*has && value != 0)
                return fail(std::string("config section: ") + name + " without its flag");
        } else if (*has) {
            EMBER_TRY(get_value(r, version, name, value));
        }
        if (*has) out = std::move(value);
        return {};
    } else if constexpr (std::is_same_v<T, std::string>) {
        return assign(r.get_string(), out);
    } else if constexpr (std::is_enum_v<T>) {
        auto text = r.get_string();
        EMBER_TRY(text);
        return config::from_name(*text, std::string("config section: ") + name, out);
    } else {
        return read_into(r, out);
    }
}

}  // namespace

std::vector<uint8_t> encode(const VmConfig& c) {
    ByteWriter w;
    put_struct(w, c);
    return w.bytes();
}

Result<ValidVmConfig> decode_config(std::span<const uint8_t> payload, uint32_t version) {
    ByteReader r(payload, "config section");
    VmConfig c;
    EMBER_TRY(get_struct(r, version, c));
    if (!r.done()) return fail("config section has trailing bytes");
    auto valid = ValidVmConfig::check(std::move(c));
    EMBER_TRY(valid, "config section");
    return valid;
}

}  // namespace ember::snapshot
