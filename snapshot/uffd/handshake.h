// Firecracker's Uffd handshake, both ends: after a load maps guest memory anonymously and
// registers it with a userfaultfd, the VMM connects to the page-fault handler's Unix socket and
// sends one message: a JSON array with one object per guest memory region, and the userfaultfd
// as SCM_RIGHTS. Firecracker's fields: base_host_virt_addr, size, offset (in the memory file),
// page_size, and page_size_kib, which despite its name holds the page size in bytes too (kept,
// deprecated, for handlers written against Firecracker 1.7). Nothing else crosses the socket.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::snapshot {

struct UffdRegion {
    uint64_t base_host_virt_addr = 0;
    uint64_t size = 0;
    uint64_t offset = 0;
    uint64_t page_size = 0;
};

// The handshake's bounds: a message larger, or with more regions, is not a VMM's.
inline constexpr size_t kMaxUffdMessage = 64 * 1024;
inline constexpr size_t kMaxUffdRegions = 64;

std::string encode_uffd_regions(std::span<const UffdRegion> regions);
// Every field a non-negative integer; page_size (or, from an older VMM, page_size_kib) 4 KiB or
// 2 MiB; sizes and offsets multiples of it; offsets not wrapping. Unknown fields are ignored,
// as a handler must for a newer VMM's.
Result<std::vector<UffdRegion>> parse_uffd_regions(std::string_view json);

// The VMM's end: connects to `socket_path` and sends `regions` with `uffd`, within `deadline`.
// The connection is returned open: the handler may watch it to learn that the VMM is gone.
Result<UniqueFd> send_uffd_handshake(const std::string& socket_path,
                                     std::span<const UffdRegion> regions, int uffd,
                                     std::chrono::milliseconds deadline);

// The process at the other end of a handshake's connection, which each side watches for the
// other's exit: its pid as SO_PEERCRED names it in our pid namespace (0: outside it), and a pidfd
// of it (invalid where the pid is not visible or pidfds are not offered).
struct UffdPeer {
    pid_t pid = 0;
    UniqueFd pidfd;
};
UffdPeer peer_of(int connection);

struct UffdHandshake {
    UniqueFd connection;
    UniqueFd uffd;
    std::vector<UffdRegion> regions;
    UffdPeer peer;  // the VMM
};

// The handler's end: accepts one connection on `listen_fd` and reads the message, within
// `deadline`.
Result<UffdHandshake> receive_uffd_handshake(int listen_fd, std::chrono::milliseconds deadline);

}  // namespace ember::snapshot
