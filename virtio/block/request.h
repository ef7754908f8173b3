// virtio/block: the virtio-blk device. A request is parsed from its descriptor chain here;
// the I/O goes through an IoEngine (io_uring or synchronous); block_device.cc ties them together.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace ember::virtio {

inline constexpr uint32_t kSectorSize = 512;

enum class RequestType : uint32_t {
    In = 0,
    Out = 1,
    Flush = 4,
    GetId = 8,
    Unsupported = 0xffffffff
};

struct BlockRequest {
    RequestType type = RequestType::Unsupported;
    uint64_t sector = 0;
    // Host addresses of the guest's data buffers, checked against guest memory.
    std::vector<iovec> data;
    std::vector<Descriptor> data_guest;  // the same buffers by guest address
    uint64_t data_len = 0;
    uint64_t status_addr = 0;  // guest address of the status byte
};

// What went wrong with a chain, and whether its status byte can still be written.
struct RequestError {
    std::string message;
    std::optional<uint64_t> status_addr;
    uint8_t status;  // VIRTIO_BLK_S_IOERR or _UNSUPP
};

// Parses and checks one request against the device's capacity (in sectors): header readable and
// first, status writable and last, data in the direction its type needs, lengths whole sectors,
// and the range inside the disk.
std::expected<BlockRequest, RequestError> parse_request(const DescriptorChain& chain,
                                                        const GuestMemory& mem,
                                                        uint64_t capacity_sectors);

}  // namespace ember::virtio
