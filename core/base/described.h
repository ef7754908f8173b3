// What a description is written for: `describe(Is<Foo> auto& s, auto&& v)` takes a Foo or a const
// Foo, so that one list of fields serves the codec that reads and the codec that writes.
#pragma once

#include <concepts>
#include <deque>
#include <optional>
#include <type_traits>
#include <vector>

namespace ember {

template <typename S, typename T>
concept Is = std::same_as<std::remove_const_t<S>, T>;

// What the codecs tell apart besides a described struct: a list (a count and its entries) and an
// optional.
template <typename T>
struct IsList : std::false_type {};
template <typename E>
struct IsList<std::vector<E>> : std::true_type {};
template <typename E>
struct IsList<std::deque<E>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename E>
struct IsOptional<std::optional<E>> : std::true_type {};

}  // namespace ember
