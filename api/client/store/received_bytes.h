// How many bytes a TCP socket has received since it connected (TCP_INFO's tcpi_bytes_received):
// what bounds a store's answer as a whole, headers included, where cpp-httplib bounds a line but
// not how many lines. Apart from store_fetch.cc because linux/tcp.h, which has the field, and
// glibc's netinet/tcp.h, which cpp-httplib includes, each define struct tcp_info.
#pragma once

#include <cstdint>

namespace ember::client {

// 0 where `fd` is no TCP socket (or not yet one).
uint64_t received_bytes(int fd);

}  // namespace ember::client
