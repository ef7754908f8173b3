#include "core/base/bytes.h"

namespace ember {

void ByteWriter::put_string(const std::string& s) {
    put(static_cast<uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
}

void ByteWriter::put_raw(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), bytes, bytes + size);
}

void ByteWriter::put_bytes(std::span<const uint8_t> b) {
    put(static_cast<uint32_t>(b.size()));
    bytes_.insert(bytes_.end(), b.begin(), b.end());
}

Result<bool> ByteReader::get_flag() {
    auto v = get<uint8_t>();
    EMBER_TRY(v);
    if (*v > 1) return fail(what_ + ": a flag holds " + std::to_string(*v) + ", not 0 or 1");
    return *v == 1;
}

Result<std::string> ByteReader::get_string() {
    auto n = get<uint32_t>();
    EMBER_TRY(n);
    if (bytes_.size() - pos_ < *n) return truncated();
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), *n);
    pos_ += *n;
    return s;
}

Result<std::vector<uint8_t>> ByteReader::get_bytes() {
    auto n = get<uint32_t>();
    EMBER_TRY(n);
    if (bytes_.size() - pos_ < *n) return truncated();
    std::vector<uint8_t> b(bytes_.begin() + static_cast<ptrdiff_t>(pos_),
                           bytes_.begin() + static_cast<ptrdiff_t>(pos_ + *n));
    pos_ += *n;
    return b;
}

}  // namespace ember
