// virtio-net as a hostile guest drives it, on either engine, over a tap that takes any frame or one
// that refuses those over 4 KiB, as a tap refuses a runt or a bad GSO header (the input's first
// byte chooses; a refused frame is dropped and counted, and the rest go on): TX
// chains of any shape with any virtio-net header
// (GSO type, sizes and checksum offsets included: ember passes the header to the tap untouched,
// and the kernel's tap checks it), RX buffers of any shape for frames from the host. The tap is a
// datagram socket, so every frame that leaves is seen whole. What goes out must be exactly what
// the device counted, each frame a header plus at most a 64 KiB super-frame; every TX chain comes
// back on the used ring.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include "core/base/log.h"
#include "fuzz/support/fake_device.h"
#include "fuzz/support/fuzzed_queues.h"
#include "fuzz/support/queue_watch.h"
#include "fuzz/support/require.h"
#include "virtio/net/net_device.h"

using namespace ember;
using fuzz::require;

namespace {

// A tap that refuses a frame over this many bytes, by its send buffer (EMSGSIZE).
constexpr int kRefusingSndbuf = 4096;

struct Net {
    Net(const GuestMemory& mem, IoEngineType engine, bool refusing = false) : interrupt(irq) {
        int fds[2];
        require(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
                "a socket pair for the tap");
        if (refusing)
            require(::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &kRefusingSndbuf,
                                 sizeof kRefusingSndbuf) == 0,
                    "a small send buffer");
        host = UniqueFd(fds[1]);
        NetworkInterfaceConfig config;
        config.iface_id = "fuzz";
        config.host_dev_name = "socket";
        config.guest_mac = "02:00:00:00:00:01";
        config.io_engine = engine;
        auto made = virtio::NetDevice::create(config, mem, interrupt,
                                              virtio::Tap::from_socket(UniqueFd(fds[0]), "socket"));
        require(made.has_value(), "a device on the socket");
        device = std::move(*made);
    }

    // Frames the device sent since the last call: their count and bytes, each checked.
    std::pair<uint64_t, uint64_t> drain_host() {
        static uint8_t frame[virtio::NetDevice::kMaxFrame + 1];
        uint64_t frames = 0, bytes = 0;
        for (;;) {
            const ssize_t n = ::recv(host.get(), frame, sizeof frame, MSG_TRUNC);
            if (n < 0) break;
            require(static_cast<size_t>(n) >= virtio::kVnetHeaderSize &&
                        static_cast<size_t>(n) <= virtio::NetDevice::kMaxFrame,
                    "a frame to the tap is a header and at most a 64 KiB super-frame");
            ++frames;
            bytes += static_cast<uint64_t>(n);
        }
        return {frames, bytes};
    }

    // Frames from the host the device has not read: dropped so the next input starts clean.
    void drain_device_side() {
        static uint8_t frame[virtio::NetDevice::kMaxFrame];
        while (::recv(device->tap_fd(), frame, sizeof frame, 0) >= 0) {
        }
    }

    fuzz::NullIrq irq;
    virtio::Interrupt interrupt;
    UniqueFd host;
    std::unique_ptr<virtio::NetDevice> device;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const GuestMemory mem = [] {
        log::set_level(log::Level::Off);
        return fuzz::make_guest_memory();
    }();
    static Net sync(mem, IoEngineType::Sync), uring(mem, IoEngineType::Async),
        sync_refusing(mem, IoEngineType::Sync, true),
        uring_refusing(mem, IoEngineType::Async, true);
    FuzzedDataProvider in(data, size);
    Net* const nets[] = {&sync, &uring, &sync_refusing, &uring_refusing};
    Net& net = *nets[in.ConsumeIntegralInRange<size_t>(0, 3)];
    auto& device = *net.device;
    const virtio::QueueState rx = fuzz::fuzzed_queue(in, 0);
    const virtio::QueueState tx = fuzz::fuzzed_queue(in, fuzz::kQueueSpan);
    const uint64_t acked = device.offered_features() & in.ConsumeIntegral<uint64_t>();
    const unsigned frames_in = in.ConsumeIntegralInRange<unsigned>(0, 3);
    for (unsigned i = 0; i < frames_in; ++i) {
        const auto frame = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 2048));
        (void)::send(net.host.get(), frame.data(), frame.size(), 0);
    }
    fuzz::fill_guest_memory(mem, in);
    if (!virtio::Queue(rx).validate(mem) || !virtio::Queue(tx).validate(mem)) {
        net.drain_device_side();
        return 0;
    }

    const fuzz::QueueWatch tx_watch(mem, tx);
    std::vector<virtio::Queue> queues;
    queues.emplace_back(rx);
    queues.emplace_back(tx);
    require(device.activate(acked, std::move(queues)).has_value(),
            "valid queues activate the device");
    const virtio::NetCounters before = device.counters();
    uint64_t frames_out = 0, bytes_out = 0;
    device.process_queue(virtio::NetDevice::kTxQueue);
    device.process_queue(virtio::NetDevice::kRxQueue);
    device.on_tap_event(EPOLLIN);
    // A full socket stops TX until it is writable again, as a full tap would.
    for (int round = 0; round < 64; ++round) {
        auto [frames, bytes] = net.drain_host();
        frames_out += frames;
        bytes_out += bytes;
        if (frames == 0 && round > 0) break;
        device.on_tap_event(EPOLLOUT);
    }
    const virtio::NetCounters& after = device.counters();
    require(frames_out == after.tx_packets - before.tx_packets,
            "every frame that left was counted, and every one counted left");
    require(bytes_out == after.tx_bytes - before.tx_bytes + virtio::kVnetHeaderSize * frames_out,
            "the bytes that left are the bytes counted");
    require(after.rx_packets - before.rx_packets <= frames_in,
            "no more frames reach the guest than the host sent");
    const uint16_t posted = static_cast<uint16_t>(fuzz::avail_idx(mem, tx) - tx.next_avail);
    tx_watch.require_all_returned(device.queue_states()[virtio::NetDevice::kTxQueue],
                                  posted > tx.size);
    device.reset();
    net.drain_device_side();
    return 0;
}
