// perf/net: frames per second and Gbit/s through ember's virtio-net device path (the host queue
// harness plays the guest driver), TX and RX, for 64-byte, 1500-byte and 64 KiB frames, on each
// engine (io_uring and a system call per frame) beside a raw tap read/write loop on the same tap
// in the same run, with the system calls and CPU time each spent per frame (the measuring
// thread's; calls counted by the kernel's raw_syscalls:sys_enter tracepoint). Runs in a network
// namespace it makes.
//   TX: the device writes the harness's frames to the tap; raw: write() of the same frames.
//   RX: a thread injects frames into the tap through a packet socket; the device reads them into
//       posted buffers; raw: read() on the tap fd. Both see the same injector, flat out, or 10,000
//       frames a second (each then finds its reader asleep, as a function's requests do).
// 64 KiB TX frames are TCP/IPv4 with a GSO vnet header (what a guest sends with TSO); 64 KiB RX
// frames are plain 65514-byte frames on a tap with MTU 65500 (the host stack would need a TCP flow
// to make GSO frames towards the guest).
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/unique_fd.h"
#include "perf/quick.h"
#include "tests/support/net_frames.h"
#include "tests/support/netns.h"
#include "tests/support/tracepoint_counter.h"
#include "tests/support/virtq_harness.h"
#include "virtio/net/net_device.h"

namespace {

using namespace ember;
using Clock = std::chrono::steady_clock;
constexpr char kTap[] = "benchtap0";

struct NoIrq : IrqTrigger {
    void trigger() override {}
};

// An Ethernet frame of `size` bytes; with `gso`, a TCP/IPv4 super-frame for the tap to segment.
std::string eth_frame(size_t size, bool gso) {
    if (gso) return testing::tcpv4_frame(size);
    std::string f(size, '\0');
    std::memcpy(f.data(), "\x02\x00\x00\x00\x00\x01\x06\x00\xac\x10\x00\x02\x88\xb5", 14);
    return f;
}

// System calls the calling thread makes, from the kernel's raw_syscalls:sys_enter tracepoint.
struct SyscallCounter : testing::TracepointCounter {
    SyscallCounter() : TracepointCounter("raw_syscalls/sys_enter") {}
};

struct Rate {
    double fps = 0;
    double gbps = 0;
    double calls_per_frame = -1;  // -1: not counted here
    double cpu_ns_per_frame = 0;  // the measuring thread's CPU time (user and system)
    uint64_t lost = 0;            // frames the device dropped or failed (none for the raw loop)
};

double thread_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Where a measured run began: the clock, and the measuring thread's CPU time and system calls.
struct Mark {
    explicit Mark(const SyscallCounter& counter)
        : calls(counter.now()), cpu(thread_cpu_seconds()), at(Clock::now()) {}
    std::optional<uint64_t> calls;
    double cpu;
    Clock::time_point at;
};

Rate rate_of(uint64_t frames, size_t frame_bytes, const Mark& mark, const SyscallCounter& counter) {
    double secs = std::chrono::duration<double>(Clock::now() - mark.at).count();
    Rate r{static_cast<double>(frames) / secs,
           static_cast<double>(frames) * static_cast<double>(frame_bytes) * 8 / secs / 1e9};
    const auto calls_after = counter.now();
    if (mark.calls && calls_after && frames > 0)
        r.calls_per_frame = static_cast<double>(*calls_after - *mark.calls) / frames;
    if (frames > 0)
        r.cpu_ns_per_frame = (thread_cpu_seconds() - mark.cpu) * 1e9 / static_cast<double>(frames);
    return r;
}

std::unique_ptr<virtio::NetDevice> make_device(const GuestMemory& mem, virtio::Interrupt& interrupt,
                                               testing::VirtqDriver& rx, testing::VirtqDriver& tx,
                                               EventLoop& loop, IoEngineType engine) {
    NetworkInterfaceConfig config;
    config.iface_id = "bench";
    config.host_dev_name = kTap;
    config.io_engine = engine;
    auto dev = virtio::NetDevice::create(config, mem, interrupt);
    if (!dev) {
        std::fprintf(stderr, "%s\n", dev.error().message.c_str());
        std::exit(1);
    }
    std::vector<virtio::Queue> queues;
    queues.emplace_back(rx.state());
    queues.emplace_back(tx.state());
    // Without MRG_RXBUF: one posted buffer per frame, as big as the largest frame.
    if (!(*dev)->activate((*dev)->offered_features() & ~(1ull << virtio::net::kMrgRxbuf),
                          std::move(queues)))
        std::exit(1);
    if (!(*dev)->attach(loop)) std::exit(1);
    if ((*dev)->config().io_engine != engine) {
        std::fprintf(stderr, "the device fell back from the engine asked for\n");
        std::exit(1);
    }
    return std::move(*dev);
}

// What a guest using TSO or not has in flight: kTxInFlight frames, each in its own buffer of the
// harness's guest memory. The raw loop writes the same frames from the same places: a loop over
// one buffer, hot in the cache, copies faster than any guest's frames are copied (about 15% for 64
// KiB frames on the 2-core host), which is not ember's own work.
constexpr uint16_t kTxInFlight = 128;

struct TxFrames {
    TxFrames(size_t frame_size, bool gso)
        : mem(64 << 20),
          rx(mem.owned_mem, 256, 0x100000, 0x200000),
          tx(mem.owned_mem, 256, 0x180000, 0x1000000),
          bytes(testing::vnet_header(gso) + eth_frame(frame_size, gso)) {
        for (uint16_t i = 0; i < kTxInFlight; ++i) {
            buffers.push_back(tx.alloc(static_cast<uint32_t>(bytes.size())));
            tx.fill(buffers.back(), bytes);
        }
    }
    testing::OwnedGuestMemory mem;
    testing::VirtqDriver rx;
    testing::VirtqDriver tx;
    std::string bytes;
    std::vector<uint64_t> buffers;
};

Rate device_tx(size_t frame_size, bool gso, std::chrono::milliseconds duration, IoEngineType engine,
               const SyscallCounter& counter) {
    TxFrames frames(frame_size, gso);
    auto& tx = frames.tx;
    NoIrq irq;
    virtio::Interrupt interrupt(irq);
    auto loop = *EventLoop::create();
    auto dev = make_device(frames.mem.owned_mem, interrupt, frames.rx, tx, loop, engine);
    const auto len = static_cast<uint32_t>(frames.bytes.size());
    for (uint16_t i = 0; i < kTxInFlight; ++i) {
        tx.write_desc(i, frames.buffers[i], len, 0, 0);
        tx.publish(i);
    }
    uint16_t seen = 0;
    const Mark mark(counter);
    while (Clock::now() - mark.at < duration) {
        dev->process_queue(virtio::NetDevice::kTxQueue);
        for (uint16_t used = tx.used_idx(); seen != used; ++seen)
            tx.publish(static_cast<uint16_t>(*frames.mem.owned_mem.read_obj<uint32_t>(
                tx.used_ring() + 4 + 8ull * (seen % 256))));
    }
    auto r = rate_of(dev->counters().tx_packets, frame_size, mark, counter);
    r.lost = dev->counters().tx_dropped + dev->counters().tx_errors;
    return r;
}

Rate raw_tx(size_t frame_size, bool gso, std::chrono::milliseconds duration,
            const SyscallCounter& counter) {
    auto tap = virtio::Tap::open(kTap);
    if (!tap) std::exit(1);
    (void)tap->set_offloads({true, true, true, false});
    TxFrames frames(frame_size, gso);
    std::vector<iovec> iovs;
    for (uint64_t buf : frames.buffers) {
        auto where = frames.mem.owned_mem.slice(buf, frames.bytes.size());
        if (!where) std::exit(1);
        iovs.push_back({where->data(), where->size()});
    }
    uint64_t sent = 0;
    size_t next = 0;
    const Mark mark(counter);
    while (Clock::now() - mark.at < duration) {
        for (int i = 0; i < 64; ++i) {
            if (tap->write(std::span(&iovs[next], 1)) > 0) ++sent;
            next = (next + 1) % iovs.size();
        }
    }
    return rate_of(sent, frame_size, mark, counter);
}

// Sends frames into the tap from the host side until told to stop: as fast as it can, or one
// each `interval`, as requests to a function come, each finding its reader asleep.
class Injector {
  public:
    Injector(size_t frame_size, std::optional<Clock::duration> interval)
        : frame_(eth_frame(frame_size, false)) {
        thread_ = std::thread([this, interval] {
            auto sock = testing::PacketSocket::open(kTap);
            if (!sock) return;
            auto next = Clock::now();
            while (!stop_.load(std::memory_order_relaxed)) {
                (void)sock->send(frame_);
                if (interval) std::this_thread::sleep_until(next += *interval);
            }
        });
    }
    ~Injector() {
        stop_ = true;
        thread_.join();
    }

  private:
    std::string frame_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

Rate device_rx(size_t frame_size, std::optional<Clock::duration> interval,
               std::chrono::milliseconds duration, IoEngineType engine,
               const SyscallCounter& counter) {
    testing::OwnedGuestMemory mem(64 << 20);
    NoIrq irq;
    virtio::Interrupt interrupt(irq);
    const uint32_t buf_size =
        static_cast<uint32_t>(virtio::kVnetHeaderSize + std::max<size_t>(frame_size, 2048));
    const uint16_t count = frame_size > 4096 ? 64 : 256;
    testing::VirtqDriver rx(mem.owned_mem, 256, 0x100000, 0x400000);
    testing::VirtqDriver tx(mem.owned_mem, 256, 0x180000, 0x300000);
    // Linux's driver negotiates EVENT_IDX and kicks after a refill only where the device asked.
    rx.state().event_idx = true;
    auto loop = *EventLoop::create();
    auto dev = make_device(mem.owned_mem, interrupt, rx, tx, loop, engine);
    for (uint16_t i = 0; i < count; ++i) {
        rx.write_desc(i, rx.alloc(buf_size), buf_size, virtio::kDescFWrite, 0);
        rx.publish(i);
    }
    dev->process_queue(virtio::NetDevice::kRxQueue);
    // A kick reaches the VMM thread as KVM's ioeventfd does: an eventfd in its loop.
    UniqueFd kick(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!loop.add(kick.get(), EPOLLIN, [&](uint32_t) {
            uint64_t n;
            (void)!::read(kick.get(), &n, sizeof n);
            dev->process_queue(virtio::NetDevice::kRxQueue);
        }))
        std::exit(1);
    Injector injector(frame_size, interval);
    uint16_t seen = 0;
    const uint64_t before = dev->counters().rx_packets;
    const Mark mark(counter);
    while (Clock::now() - mark.at < duration) {
        (void)loop.run_once(10);
        const uint16_t before_refill = rx.avail_idx();
        for (uint16_t used = rx.used_idx(); seen != used; ++seen)
            rx.publish(static_cast<uint16_t>(
                *mem.owned_mem.read_obj<uint32_t>(rx.used_ring() + 4 + 8ull * (seen % 256))));
        if (rx.kick_needed(before_refill)) {
            const uint64_t one = 1;
            (void)!::write(kick.get(), &one, sizeof one);
        }
    }
    auto r = rate_of(dev->counters().rx_packets - before, frame_size, mark, counter);
    r.lost = dev->counters().rx_dropped + dev->counters().rx_errors;
    return r;
}

Rate raw_rx(size_t frame_size, std::optional<Clock::duration> interval,
            std::chrono::milliseconds duration, const SyscallCounter& counter) {
    auto tap = virtio::Tap::open(kTap);
    if (!tap) std::exit(1);
    std::vector<uint8_t> buf(virtio::NetDevice::kMaxFrame);
    Injector injector(frame_size, interval);
    uint64_t frames = 0;
    const Mark mark(counter);
    while (Clock::now() - mark.at < duration) {
        ssize_t n = tap->read(buf);
        if (n > 0) {
            ++frames;
        } else if (n == -EAGAIN) {
            pollfd p{tap->fd(), POLLIN, 0};
            ::poll(&p, 1, 10);
        }
    }
    return rate_of(frames, frame_size, mark, counter);
}

void set_mtu(int mtu) {
    int sock = ::socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, kTap, IFNAMSIZ - 1);
    ifr.ifr_mtu = mtu;
    if (::ioctl(sock, SIOCSIFMTU, &ifr) < 0) std::perror("SIOCSIFMTU");
    ::close(sock);
}

}  // namespace

int main(int argc, char** argv) {
    int ms = ember::perf::quick_mode() ? 50 : 1500;
    if (argc == 3 && std::string(argv[1]) == "--ms") ms = std::stoi(argv[2]);
    if (!testing::enter_new_netns() || !testing::create_tap(kTap)) {
        std::fprintf(stderr, "perf/net needs root: it makes its own network namespace and tap\n");
        return 1;
    }
    set_mtu(
        65500);  // the largest whole frame below tun's limit: 65514 bytes with its Ethernet header
    const auto d = std::chrono::milliseconds(ms);
    std::printf(
        "perf/net: %d ms per run, ember's device path on each engine vs a raw tap loop, same tap, "
        "same run; calls/frame: system calls of the measuring thread per frame (- where the host "
        "cannot count them)\n\n",
        ms);
    std::printf(
        "| dir | frame | io_uring frames/s | Gbit/s | calls/frame | Sync frames/s | calls/frame | "
        "raw frames/s | calls/frame | io_uring/raw | Sync/raw | io_uring/Sync | CPU ns/frame, "
        "io_uring / Sync / raw | lost, io_uring / Sync |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    const SyscallCounter counter;
    auto calls = [](const Rate& r) {
        return r.calls_per_frame < 0 ? std::string("-")
                                     : std::to_string(r.calls_per_frame).substr(0, 5);
    };
    auto row = [&](const char* dir, const char* name, const Rate& a, const Rate& s, const Rate& r) {
        std::printf(
            "| %s | %s | %.0f | %.2f | %s | %.0f | %s | %.0f | %s | %.2f | %.2f | %.2f | "
            "%.0f / %.0f / %.0f | %llu / %llu |\n",
            dir, name, a.fps, a.gbps, calls(a).c_str(), s.fps, calls(s).c_str(), r.fps,
            calls(r).c_str(), a.fps / r.fps, s.fps / r.fps, a.fps / s.fps, a.cpu_ns_per_frame,
            s.cpu_ns_per_frame, r.cpu_ns_per_frame, static_cast<unsigned long long>(a.lost),
            static_cast<unsigned long long>(s.lost));
        std::fflush(stdout);
    };
    struct Size {
        const char* name;
        size_t bytes;
        bool gso;
    };
    for (Size s :
         {Size{"64 B", 64, false}, Size{"1500 B", 1514, false}, Size{"64 KiB TSO", 65514, true}}) {
        auto a = device_tx(s.bytes, s.gso, d, IoEngineType::Async, counter);
        auto sy = device_tx(s.bytes, s.gso, d, IoEngineType::Sync, counter);
        auto r = raw_tx(s.bytes, s.gso, d, counter);
        row("TX", s.name, a, sy, r);
    }
    for (Size s :
         {Size{"64 B", 64, false}, Size{"1500 B", 1514, false}, Size{"64 KiB", 65514, false}}) {
        auto a = device_rx(s.bytes, std::nullopt, d, IoEngineType::Async, counter);
        auto sy = device_rx(s.bytes, std::nullopt, d, IoEngineType::Sync, counter);
        auto r = raw_rx(s.bytes, std::nullopt, d, counter);
        row("RX", s.name, a, sy, r);
    }
    // A function's requests: each frame wakes its reader. The frame rate is the injector's; what
    // differs is the CPU time and system calls each frame costs.
    const auto every = std::chrono::microseconds(100);
    auto a = device_rx(64, every, d, IoEngineType::Async, counter);
    auto sy = device_rx(64, every, d, IoEngineType::Sync, counter);
    auto r = raw_rx(64, every, d, counter);
    row("RX", "64 B, 10,000/s", a, sy, r);
    return 0;
}
