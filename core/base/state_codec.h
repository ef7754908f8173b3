// A struct a state file keeps, described once, and the one codec that writes and reads every such
// struct. describe_state(s, v) calls v(StateField, member) for each field in the order its section
// holds them; encode_state() writes them and decode_state() reads them back, checked: a flag is 0
// or 1, a list holds no more than its field's `max`, and nothing is left over. A field's name is
// what messages call it: a list's, what its entries are ("vCPU section: 5000 MSRs, more than
// 4096").
//
// Leaves: a flag (bool) as one byte; a number, or a struct KVM defines, as its bytes; ZeroBytes as
// zeros; a list (std::vector, std::deque) as a 32-bit count and its entries; an optional as a flag
// and, when set, its value; a described struct as its fields. A field a later version of the
// section added carries that version as its `since`: a section of an earlier version holds none,
// and the field keeps its default (and encode_state at that version leaves it out).
#pragma once

#include <concepts>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/described.h"
#include "core/base/error.h"

namespace ember {

struct StateField {
    const char* name;    // a list's names what its entries are
    uint32_t since = 1;  // the section's version that first held it
    uint32_t max = 0;    // a list's most entries
};

template <typename T>
concept StateDescribed = requires(T& t, const T& c) {
    describe_state(t, [](const StateField&, auto&) {});
    describe_state(c, [](const StateField&, const auto&) {});
};

// Fields no message names, in their section's order: numbers, flags, KVM's structs. A list, an
// optional or a described struct is named by its own v(StateField{...}, member).
template <typename V, typename... M>
void leaves(V& v, M&... members) {
    static_assert(
        ((!IsList<std::remove_const_t<M>>::value && !IsOptional<std::remove_const_t<M>>::value &&
          !StateDescribed<std::remove_const_t<M>>) &&
         ...));
    (v(StateField{"field"}, members), ...);
}

// Bytes a layout keeps zeroed (a struct's padding, from when it was written as its own bytes):
// written as zeros, and refused when they are not.
template <size_t N>
struct ZeroBytes {
    static constexpr size_t kSize = N;
};

namespace state_codec {

template <typename T>
struct IsZeroBytes : std::false_type {};
template <size_t N>
struct IsZeroBytes<ZeroBytes<N>> : std::true_type {};

template <typename T>
void put(ByteWriter& w, const T& v, uint32_t version) {
    if constexpr (StateDescribed<T>) {
        describe_state(v, [&](const StateField& f, const auto& member) {
            if (f.since <= version) put(w, member, version);
        });
    } else if constexpr (IsList<T>::value) {
        w.put(static_cast<uint32_t>(v.size()));
        for (const auto& e : v) put(w, e, version);
    } else if constexpr (IsOptional<T>::value) {
        w.put<uint8_t>(v.has_value());
        if (v) put(w, *v, version);
    } else if constexpr (std::is_same_v<T, bool>) {
        w.put<uint8_t>(v);
    } else if constexpr (IsZeroBytes<T>::value) {
        for (size_t i = 0; i < T::kSize; ++i) w.put<uint8_t>(0);
    } else {
        w.put(v);
    }
}

template <typename T>
Result<void> get(ByteReader& r, const std::string& owner, const StateField& f, uint32_t version,
                 T& out);

// Each field of `s`, whose path in messages is `path`.
template <StateDescribed T>
Result<void> get_fields(ByteReader& r, const std::string& path, uint32_t version, T& s) {
    Result<void> status;
    describe_state(s, [&](const StateField& field, auto& member) {
        if (status && field.since <= version) status = get(r, path, field, version, member);
    });
    return status;
}

// `out`, the field `f` of what `owner` names ("vCPU section", "cpu template: CPUID modifiers").
template <typename T>
Result<void> get(ByteReader& r, const std::string& owner, const StateField& f, uint32_t version,
                 T& out) {
    if constexpr (StateDescribed<T>) {
        return get_fields(r, owner + ": " + f.name, version, out);
    } else if constexpr (IsList<T>::value) {
        auto n = r.get<uint32_t>();
        EMBER_TRY(n);
        if (*n > f.max)
            return fail(owner + ": " + std::to_string(*n) + " " + f.name + ", more than " +
                        std::to_string(f.max));
        out.clear();
        for (uint32_t i = 0; i < *n; ++i) EMBER_TRY(get(r, owner, f, version, out.emplace_back()));
        return {};
    } else if constexpr (IsOptional<T>::value) {
        auto present = r.get_flag();
        EMBER_TRY(present);
        out.reset();
        if (*present) EMBER_TRY(get(r, owner, f, version, out.emplace()));
        return {};
    } else if constexpr (std::is_same_v<T, bool>) {
        auto v = r.get_flag();
        EMBER_TRY(v);
        out = *v;
        return {};
    } else if constexpr (IsZeroBytes<T>::value) {
        for (size_t i = 0; i < T::kSize; ++i) {
            auto b = r.get<uint8_t>();
            EMBER_TRY(b);
            if (*b != 0) return fail(owner + ": " + f.name + " is not zero");
        }
        return {};
    } else {
        auto v = r.get<T>();
        EMBER_TRY(v);
        out = *v;
        return {};
    }
}

}  // namespace state_codec

// `s` as a section of `version` holds it.
template <StateDescribed T>
std::vector<uint8_t> encode_state(const T& s, uint32_t version) {
    ByteWriter w;
    state_codec::put(w, s, version);
    return w.bytes();
}

// A section of `version` read back; `what` ("serial section") begins its errors.
template <StateDescribed T>
Result<T> decode_state(std::span<const uint8_t> payload, uint32_t version,
                       const std::string& what) {
    ByteReader r(payload, what);
    T s{};
    EMBER_TRY(state_codec::get_fields(r, what, version, s));
    if (!r.done()) return fail(what + ": " + std::to_string(r.remaining()) + " bytes too many");
    return s;
}

}  // namespace ember
