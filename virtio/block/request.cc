#include "virtio/block/request.h"

#include <linux/virtio_blk.h>

namespace ember::virtio {
namespace {

struct Header {
    uint32_t type;
    uint32_t ioprio;
    uint64_t sector;
};
static_assert(sizeof(Header) == 16);

std::unexpected<RequestError> bad(std::string message, std::optional<uint64_t> status,
                                  uint8_t code = VIRTIO_BLK_S_IOERR) {
    return std::unexpected(RequestError{std::move(message), status, code});
}

}  // namespace

std::expected<BlockRequest, RequestError> parse_request(const DescriptorChain& chain,
                                                        const GuestMemory& mem,
                                                        uint64_t capacity_sectors) {
    const auto& all = chain.descriptors;
    std::optional<uint64_t> status;
    if (!all.empty() && all.back().device_writable && all.back().len >= 1)
        status = all.back().addr + all.back().len - 1;
    if (!status) return bad("request has no writable status byte at its end", std::nullopt);
    if (chain.readable_count == 0 || all.front().len < sizeof(Header))
        return bad("request header is missing or shorter than 16 bytes", status);
    auto header = mem.read_obj<Header>(all.front().addr);
    if (!header) return bad(header.error().message, status);

    BlockRequest req;
    req.sector = header->sector;
    req.status_addr = *status;
    // Data buffers sit between the header and the status descriptor.
    std::span<const Descriptor> data(all.data() + 1, all.size() - 2);
    const size_t readable_data = chain.readable_count - 1;
    switch (header->type) {
        case VIRTIO_BLK_T_IN:
            req.type = RequestType::In;
            if (readable_data != 0)
                return bad("read request has device-readable data buffers", status);
            break;
        case VIRTIO_BLK_T_OUT:
            req.type = RequestType::Out;
            if (readable_data != data.size())
                return bad("write request has device-writable data buffers", status);
            break;
        case VIRTIO_BLK_T_FLUSH: req.type = RequestType::Flush; return req;
        case VIRTIO_BLK_T_GET_ID:
            req.type = RequestType::GetId;
            if (data.empty() || readable_data != 0)
                return bad("GET_ID needs one writable buffer", status);
            break;
        default:
            return bad("unsupported request type " + std::to_string(header->type), status,
                       VIRTIO_BLK_S_UNSUPP);
    }
    for (const auto& d : data) {
        auto host = mem.slice(d.addr, d.len);
        if (!host) return bad(host.error().message, status);
        req.data.push_back(iovec{host->data(), host->size()});
        req.data_guest.push_back(d);
        req.data_len += d.len;
    }
    if (req.type == RequestType::GetId) return req;
    if (req.data_len % kSectorSize != 0)
        return bad(
            "data length " + std::to_string(req.data_len) + " is not a whole number of sectors",
            status);
    const uint64_t sectors = req.data_len / kSectorSize;
    if (req.sector > capacity_sectors || sectors > capacity_sectors - req.sector)
        return bad("sectors " + std::to_string(req.sector) + "+" + std::to_string(sectors) +
                       " are beyond the disk's " + std::to_string(capacity_sectors),
                   status);
    return req;
}

}  // namespace ember::virtio
