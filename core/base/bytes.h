// Little-endian fields into and out of a byte buffer, every read bounds-checked: what a device's
// snapshot state is written with (snapshot/ frames the buffers into sections).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/error.h"

namespace ember {

class ByteWriter {
  public:
    template <typename T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        put_raw(&v, sizeof v);
    }
    void put_string(const std::string& s);
    void put_bytes(std::span<const uint8_t> b);
    const std::vector<uint8_t>& bytes() const { return bytes_; }

  private:
    // Out of line: GCC 12 at -O3 warns (-Warray-bounds, -Wstringop-overflow, wrongly) on a
    // vector's growth inlined with a size it knows.
    void put_raw(const void* data, size_t size);

    std::vector<uint8_t> bytes_;
};

class ByteReader {
  public:
    ByteReader(std::span<const uint8_t> bytes, std::string what)
        : bytes_(bytes), what_(std::move(what)) {}
    template <typename T>
    Result<T> get() {
        static_assert(std::is_trivially_copyable_v<T>);
        static_assert(!std::is_same_v<T, bool>, "a flag is read with get_flag()");
        if (bytes_.size() - pos_ < sizeof(T)) return truncated();
        T v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof v);
        pos_ += sizeof v;
        return v;
    }
    // A flag, written as one byte: 0 or 1. Any other value could not have been written, and a
    // file holding one is refused rather than read back as something it would not write again.
    Result<bool> get_flag();
    Result<std::string> get_string();
    Result<std::vector<uint8_t>> get_bytes();
    bool done() const { return pos_ == bytes_.size(); }
    size_t remaining() const { return bytes_.size() - pos_; }

  private:
    std::unexpected<Error> truncated() const {
        return fail(what_ + ": section is shorter than its contents");
    }
    std::span<const uint8_t> bytes_;
    size_t pos_ = 0;
    std::string what_;
};

template <typename T>
Result<void> read_into(ByteReader& r, T& out) {
    auto v = r.get<T>();
    EMBER_TRY(v);
    out = *v;
    return {};
}

inline Result<void> read_into(ByteReader& r, bool& out) {
    auto v = r.get_flag();
    EMBER_TRY(v);
    out = *v;
    return {};
}

// A count, then the elements.
template <typename T>
void put_vector(ByteWriter& w, const std::vector<T>& v) {
    w.put(static_cast<uint32_t>(v.size()));
    for (const auto& e : v) w.put(e);
}

}  // namespace ember
