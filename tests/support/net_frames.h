// Frames for net device tests and benchmarks: a TCP/IPv4 frame from 06:00:ac:10:00:02 (the guest's
// MAC in our tests) to 02:00:00:00:00:01, 172.31.0.1 -> 172.31.0.2, and the vnet header that
// asks the tap for TCP segmentation offload of it.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "virtio/net/tap.h"

namespace ember::testing {

inline uint16_t ip_checksum(const uint8_t* p, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

// `size` bytes: Ethernet, IPv4 (checksummed) and a TCP header (PSH ACK), zeros after it.
inline std::string tcpv4_frame(size_t size) {
    std::string f(size, '\0');
    std::memcpy(f.data(), "\x02\x00\x00\x00\x00\x01\x06\x00\xac\x10\x00\x02\x08\x00", 14);
    auto* ip = reinterpret_cast<uint8_t*>(f.data() + 14);
    ip[0] = 0x45;
    const uint16_t total = htons(static_cast<uint16_t>(size - 14));
    std::memcpy(ip + 2, &total, 2);
    ip[8] = 64;
    ip[9] = 6;  // TCP
    const uint8_t addresses[8] = {0xac, 0x1f, 0x00, 0x01, 0xac, 0x1f, 0x00, 0x02};
    std::memcpy(ip + 12, addresses, sizeof addresses);
    const uint16_t csum = htons(ip_checksum(ip, 20));
    std::memcpy(ip + 10, &csum, 2);
    uint8_t* tcp = ip + 20;
    tcp[12] = 5 << 4;  // data offset
    tcp[13] = 0x18;    // PSH ACK
    return f;
}

// The vnet header of a tcpv4_frame() to be cut into 1448-byte segments, checksums left to the
// host; all zeros (no offload) without `tso`.
inline std::string vnet_header(bool tso) {
    std::string h(virtio::kVnetHeaderSize, '\0');
    if (!tso) return h;
    h[0] = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
    h[1] = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
    const uint16_t hdr_len = 54, gso_size = 1448, csum_start = 34, csum_offset = 16;
    std::memcpy(h.data() + 2, &hdr_len, 2);
    std::memcpy(h.data() + 4, &gso_size, 2);
    std::memcpy(h.data() + 6, &csum_start, 2);
    std::memcpy(h.data() + 8, &csum_offset, 2);
    return h;
}

}  // namespace ember::testing
