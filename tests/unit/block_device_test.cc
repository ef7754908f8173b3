// virtio-blk through the host queue harness, on a real image file, for both I/O engines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "tests/support/ember_process.h"
#include "tests/support/virtq_harness.h"
#include "tests/unit/fake_irq.h"
#include "virtio/block/block_device.h"

namespace ember::virtio {
namespace {

using testing::Buffer;
using testing::VirtqHarness;

constexpr uint64_t kImageBytes = 1 << 20;

class BlockTest : public ::testing::TestWithParam<IoEngineType> {
  protected:
    void SetUp() override {
        image = dir.write("disk.img", std::string(kImageBytes, '\0'));
        config.drive_id = "rootfs";
        config.path_on_host = image;
        config.io_engine = GetParam();
    }
    void start(uint16_t qsize = 16, bool event_idx = false) {
        h = std::make_unique<VirtqHarness>(qsize);
        auto dev = BlockDevice::create(config, h->mem(), interrupt, options);
        ASSERT_TRUE(dev) << dev.error().message;
        device = std::move(*dev);
        h->state().event_idx = event_idx;
        h->state().indirect = true;
        std::vector<Queue> queues;
        queues.emplace_back(h->state());
        ASSERT_TRUE(device->activate(device->offered_features(), std::move(queues)));
        ASSERT_TRUE(device->attach(loop));
    }
    // Runs the device's events (the ring's completions, the rate limiter's timer) as the VMM
    // loop would, until the expected I/O has finished or 10 s have passed.
    void settle() {
        for (int i = 0; i < 100 && device->counters().read_ops + device->counters().write_ops +
                                           device->counters().flush_ops <
                                       expected_ops_;
             ++i)
            ASSERT_TRUE(loop.run_once(100));
    }

    struct Req {
        uint64_t hdr, data, status;
        uint16_t head;
    };
    Req request(uint32_t type, uint64_t sector, uint32_t len, bool data_writable) {
        Req r{h->alloc(16), len ? h->alloc(len) : 0, h->alloc(1), 0};
        uint8_t hdr[16] = {};
        std::memcpy(hdr, &type, 4);
        std::memcpy(hdr + 8, &sector, 8);
        h->fill(r.hdr, std::string(reinterpret_cast<char*>(hdr), 16));
        h->fill(r.status, "\xee");  // not a status value: shows whether the device wrote it
        std::vector<Buffer> bufs{{r.hdr, 16}};
        if (len) bufs.push_back({r.data, len, data_writable});
        bufs.push_back({r.status, 1, true});
        r.head = h->add_chain(bufs);
        if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT || type == VIRTIO_BLK_T_FLUSH)
            ++expected_ops_;
        return r;
    }
    uint8_t status(const Req& r) { return static_cast<uint8_t>(h->read(r.status, 1)[0]); }
    std::string image_bytes(uint64_t offset, size_t len) {
        std::ifstream in(image, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(offset));
        std::string s(len, '\0');
        in.read(s.data(), static_cast<std::streamsize>(len));
        return s;
    }
    void run() {
        device->process_queue(0);
        settle();
    }

    testing::TempDir dir;
    std::string image;
    DriveConfig config;
    BlockDevice::Options options;
    testing::CountingIrq irq;
    Interrupt interrupt{irq};
    std::unique_ptr<VirtqHarness> h;
    EventLoop loop = *EventLoop::create();
    std::unique_ptr<BlockDevice> device;
    uint64_t expected_ops_ = 0;
};

TEST_P(BlockTest, WritesReachTheImageAndReadsComeBack) {
    start();
    auto w = request(VIRTIO_BLK_T_OUT, 8, 1024, false);
    h->fill(w.data, std::string(512, 'a') + std::string(512, 'b'));
    run();
    EXPECT_EQ(status(w), VIRTIO_BLK_S_OK);
    EXPECT_EQ(image_bytes(8 * 512, 1024), std::string(512, 'a') + std::string(512, 'b'));
    auto r = request(VIRTIO_BLK_T_IN, 9, 512, true);
    run();
    EXPECT_EQ(status(r), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h->read(r.data, 512), std::string(512, 'b'));
    auto used = h->used();
    ASSERT_EQ(used.size(), 2u);
    EXPECT_EQ(used[0], (std::pair<uint32_t, uint32_t>{w.head, 1}))
        << "a write returns only its status byte";
    EXPECT_EQ(used[1], (std::pair<uint32_t, uint32_t>{r.head, 513}));
    EXPECT_GE(irq.count, 1);
    EXPECT_EQ(device->counters().write_bytes, 1024u);
    EXPECT_EQ(device->counters().read_bytes, 512u);
}

// Found by fuzz/block_fuzz: the second kick of a broken ring spun the VMM thread for ever.
TEST_P(BlockTest, ABrokenRingKickedAgainIsLeftAlone) {
    start(16, true);
    h->set_avail_idx(100);
    device->process_queue(0);
    device->process_queue(0);
    EXPECT_EQ(device->counters().invalid_requests, 1u);
    EXPECT_TRUE(h->used().empty());
}

TEST_P(BlockTest, FlushWithWritebackIsPassedToTheHost) {
    config.cache_type = CacheType::Writeback;
    start();
    EXPECT_TRUE(device->offered_features() & (1ull << VIRTIO_BLK_F_FLUSH));
    auto f = request(VIRTIO_BLK_T_FLUSH, 0, 0, false);
    run();
    EXPECT_EQ(status(f), VIRTIO_BLK_S_OK);
    EXPECT_EQ(device->counters().flush_ops, 1u);
}

TEST_P(BlockTest, FlushIsNotOfferedForUnsafeButStillAnswered) {
    start();
    EXPECT_FALSE(device->offered_features() & (1ull << VIRTIO_BLK_F_FLUSH));
    auto f = request(VIRTIO_BLK_T_FLUSH, 0, 0, false);
    device->process_queue(0);
    EXPECT_EQ(status(f), VIRTIO_BLK_S_OK);
}

TEST_P(BlockTest, GetIdReturnsTwentyBytes) {
    start();
    auto g = request(VIRTIO_BLK_T_GET_ID, 0, 20, true);
    device->process_queue(0);
    EXPECT_EQ(status(g), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h->used().back().second, 21u);
    EXPECT_NE(h->read(g.data, 20), std::string(20, '\0'));
}

TEST_P(BlockTest, ReadOnlyDriveRefusesWritesAndLeavesTheImageUntouched) {
    config.is_read_only = true;
    start();
    EXPECT_TRUE(device->offered_features() & (1ull << VIRTIO_BLK_F_RO));
    auto w = request(VIRTIO_BLK_T_OUT, 0, 512, false);
    h->fill(w.data, std::string(512, 'x'));
    expected_ops_ = 0;
    device->process_queue(0);
    EXPECT_EQ(status(w), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(image_bytes(0, 512), std::string(512, '\0'));
}

TEST_P(BlockTest, RequestsBeyondCapacityFail) {
    start();
    EXPECT_EQ(device->capacity_sectors(), kImageBytes / 512);
    auto past = request(VIRTIO_BLK_T_IN, kImageBytes / 512, 512, true);
    auto straddling = request(VIRTIO_BLK_T_OUT, kImageBytes / 512 - 1, 1024, false);
    auto huge = request(VIRTIO_BLK_T_IN, UINT64_MAX - 1, 1024, true);
    expected_ops_ = 0;
    device->process_queue(0);
    EXPECT_EQ(status(past), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(status(straddling), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(status(huge), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(image_bytes(kImageBytes - 512, 512), std::string(512, '\0'));
}

TEST_P(BlockTest, MalformedRequestsGetAnErrorStatusAndTheDeviceGoesOn) {
    start();
    auto partial = request(VIRTIO_BLK_T_IN, 0, 100, true);
    auto in_readable = request(VIRTIO_BLK_T_IN, 0, 512, false);
    auto out_writable = request(VIRTIO_BLK_T_OUT, 0, 512, true);
    auto unknown = request(42, 0, 0, false);
    expected_ops_ = 0;
    // A chain with no status byte: nothing to report into, so it is only given back.
    uint64_t hdr = h->alloc(16);
    uint16_t no_status = h->add_chain({{hdr, 16}});
    auto fine = request(VIRTIO_BLK_T_IN, 0, 512, true);
    run();
    EXPECT_EQ(status(partial), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(status(in_readable), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(status(out_writable), VIRTIO_BLK_S_IOERR);
    EXPECT_EQ(status(unknown), VIRTIO_BLK_S_UNSUPP);
    EXPECT_EQ(status(fine), VIRTIO_BLK_S_OK);
    bool returned = false;
    for (auto [head, len] : h->used())
        if (head == no_status) returned = (len == 0);
    EXPECT_TRUE(returned);
    EXPECT_EQ(device->counters().invalid_requests, 5u);
}

TEST_P(BlockTest, MalformedChainIsReturnedEmptyAndTheNextRequestServed) {
    start();
    h->write_desc(10, 64ull << 20, 16, 0, 0);  // header outside guest memory
    h->publish(10);
    auto fine = request(VIRTIO_BLK_T_IN, 0, 512, true);
    run();
    ASSERT_GE(h->used().size(), 2u);
    EXPECT_EQ(h->used()[0], (std::pair<uint32_t, uint32_t>{10, 0}));
    EXPECT_EQ(status(fine), VIRTIO_BLK_S_OK);
}

TEST_P(BlockTest, ManyRequestsInFlight) {
    start(64);
    std::vector<Req> writes;
    for (int i = 0; i < 20; ++i) {
        writes.push_back(request(VIRTIO_BLK_T_OUT, static_cast<uint64_t>(i) * 8, 4096, false));
        h->fill(writes.back().data, std::string(4096, static_cast<char>('A' + i)));
    }
    run();
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(status(writes[i]), VIRTIO_BLK_S_OK) << i;
        EXPECT_EQ(image_bytes(static_cast<uint64_t>(i) * 4096, 4096),
                  std::string(4096, static_cast<char>('A' + i)));
    }
    EXPECT_EQ(h->used().size(), 20u);
}

// More than the 64 a drive hands to io_uring at once: the rest wait in the queue and are taken
// as earlier ones complete, none lost or answered twice.
TEST_P(BlockTest, RequestsBeyondTheEnginesDepthWaitTheirTurn) {
    start(256);
    constexpr int kRequests = 80;  // three descriptors each: a phase fits the queue
    std::vector<Req> writes;
    for (int i = 0; i < kRequests; ++i) {
        writes.push_back(request(VIRTIO_BLK_T_OUT, static_cast<uint64_t>(i) * 8, 4096, false));
        h->fill(writes.back().data, std::string(4096, static_cast<char>(i)));
    }
    run();
    std::vector<Req> reads;
    for (int i = 0; i < kRequests; ++i)
        reads.push_back(request(VIRTIO_BLK_T_IN, static_cast<uint64_t>(i) * 8, 4096, true));
    run();
    for (int i = 0; i < kRequests; ++i) {
        EXPECT_EQ(status(writes[i]), VIRTIO_BLK_S_OK) << i;
        EXPECT_EQ(status(reads[i]), VIRTIO_BLK_S_OK) << i;
        EXPECT_EQ(h->read(reads[i].data, 4096), std::string(4096, static_cast<char>(i))) << i;
    }
    EXPECT_EQ(h->used().size(), 2u * kRequests);
}

// A snapshot's quiesce reaps the completions the waiting requests waited for: it must take and
// finish those too, or nothing would take them again.
TEST_P(BlockTest, QuiesceFinishesTheRequestsWaitingBeyondTheEnginesDepth) {
    start(256);
    constexpr int kRequests = 80;
    std::vector<Req> writes;
    for (int i = 0; i < kRequests; ++i) {
        writes.push_back(request(VIRTIO_BLK_T_OUT, static_cast<uint64_t>(i) * 8, 4096, false));
        h->fill(writes.back().data, std::string(4096, static_cast<char>(i)));
    }
    device->process_queue(0);
    ASSERT_TRUE(device->quiesce());
    EXPECT_EQ(h->used().size(), static_cast<size_t>(kRequests)) << "all answered by the quiesce";
    auto later = request(VIRTIO_BLK_T_IN, 0, 4096, true);
    run();
    EXPECT_EQ(status(later), VIRTIO_BLK_S_OK) << "and the queue goes on after it";
    EXPECT_EQ(h->read(later.data, 4096), std::string(4096, '\0'));
}

// A request the engine refused goes back to the queue with its tokens: the bucket is charged once
// per request however often it waits.
TEST_P(BlockTest, ARequestWaitingForTheEngineIsChargedOnce) {
    Clock::time_point now{};
    options.clock = [&now] { return now; };  // never refills
    constexpr int kRequests = 80;
    config.rate_limiter =
        RateLimiterConfig{std::nullopt, TokenBucketConfig{kRequests, std::nullopt, 1000}};
    start(256);
    std::vector<Req> writes;
    for (int i = 0; i < kRequests; ++i)
        writes.push_back(request(VIRTIO_BLK_T_OUT, static_cast<uint64_t>(i) * 8, 4096, false));
    run();
    for (int i = 0; i < kRequests; ++i) EXPECT_EQ(status(writes[i]), VIRTIO_BLK_S_OK) << i;
    EXPECT_EQ(device->counters().rate_limited, 0u);
}

TEST_P(BlockTest, AHeadReusedWhileInFlightIsRefusedButReturned) {
    start();
    auto w = request(VIRTIO_BLK_T_OUT, 0, 512, false);
    h->fill(w.data, std::string(512, 'd'));
    h->publish(w.head);  // the same head again, before the first is done
    run();
    auto used = h->used();
    ASSERT_EQ(used.size(), 2u) << "each chain made available is used once";
    EXPECT_EQ(used[0].first, w.head);
    EXPECT_EQ(used[1].first, w.head);
    EXPECT_EQ(device->counters().invalid_requests, 1u);
    EXPECT_EQ(device->counters().write_ops, 1u);
    EXPECT_EQ(status(w), VIRTIO_BLK_S_OK) << "the first request completes after the refusal";
    EXPECT_EQ(image_bytes(0, 512), std::string(512, 'd'));
}

TEST_P(BlockTest, RateLimiterHoldsRequestsUntilTheClockHasRefilledIt) {
    using namespace std::chrono_literals;
    Clock::time_point now{};
    options.clock = [&now] { return now; };
    config.rate_limiter = RateLimiterConfig{std::nullopt, TokenBucketConfig{1, std::nullopt, 20}};
    start();
    auto first = request(VIRTIO_BLK_T_IN, 0, 512, true);
    auto second = request(VIRTIO_BLK_T_IN, 1, 512, true);
    expected_ops_ = 1;
    run();
    EXPECT_EQ(status(first), VIRTIO_BLK_S_OK);
    EXPECT_EQ(status(second), 0xee) << "held back by the ops bucket";
    EXPECT_EQ(device->counters().rate_limited, 1u);

    // The timer firing before the bucket has refilled lets nothing through.
    now += 19ms;
    device->on_rate_limiter_timer();
    EXPECT_EQ(status(second), 0xee);
    EXPECT_EQ(device->counters().rate_limited, 2u);

    now += 1ms;
    device->on_rate_limiter_timer();
    expected_ops_ = 2;
    settle();
    EXPECT_EQ(status(second), VIRTIO_BLK_S_OK);
    EXPECT_EQ(device->counters().rate_limited, 2u);
}

TEST_P(BlockTest, AnUpdatedImageServesTheNextRequestsWithItsCapacity) {
    start();
    auto before = request(VIRTIO_BLK_T_IN, 0, 512, true);
    run();
    EXPECT_EQ(h->read(before.data, 512), std::string(512, '\0'));

    auto bigger = dir.write("other.img", std::string(2 * kImageBytes, 'n'));
    auto changed = device->update(DriveUpdate{"rootfs", bigger, std::nullopt});
    ASSERT_TRUE(changed) << changed.error().message;
    EXPECT_TRUE(*changed) << "the capacity may have changed: the driver must be told";
    EXPECT_EQ(device->capacity_sectors(), 2 * kImageBytes / 512);
    uint64_t capacity = 0;
    device->read_config(0, std::span(reinterpret_cast<uint8_t*>(&capacity), 8));
    EXPECT_EQ(capacity, 2 * kImageBytes / 512) << "the config space the guest reads";
    EXPECT_EQ(device->config().path_on_host, bigger);

    auto after = request(VIRTIO_BLK_T_IN, kImageBytes / 512, 512, true);  // past the old end
    run();
    EXPECT_EQ(status(after), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h->read(after.data, 512), std::string(512, 'n'));
    auto w = request(VIRTIO_BLK_T_OUT, 0, 512, false);
    h->fill(w.data, std::string(512, 'w'));
    run();
    EXPECT_EQ(status(w), VIRTIO_BLK_S_OK);
    EXPECT_EQ(image_bytes(0, 512), std::string(512, '\0')) << "the old image is left alone";
}

TEST_P(BlockTest, ARefusedUpdateChangesNothing) {
    start();
    auto odd = dir.write("odd.img", std::string(1000, 'x'));
    for (const std::string& path : {dir.path() + "/missing.img", odd, dir.path()}) {
        auto r = device->update(DriveUpdate{"rootfs", path, std::nullopt});
        ASSERT_FALSE(r) << path;
        EXPECT_NE(r.error().message.find("drive 'rootfs'"), std::string::npos) << r.error().message;
    }
    EXPECT_EQ(device->capacity_sectors(), kImageBytes / 512);
    EXPECT_EQ(device->config().path_on_host, image);
    auto read = request(VIRTIO_BLK_T_IN, 0, 512, true);
    run();
    EXPECT_EQ(status(read), VIRTIO_BLK_S_OK);
}

TEST_P(BlockTest, UpdatedRateLimitsHoldAndReleaseRequestsAtOnce) {
    Clock::time_point now{};
    options.clock = [&now] { return now; };
    start();
    // One op per 20 ms, from an unlimited start: the second request waits.
    auto one = device->update(
        DriveUpdate{"rootfs", std::nullopt,
                    RateLimiterConfig{std::nullopt, TokenBucketConfig{1, std::nullopt, 20}}});
    ASSERT_TRUE(one) << one.error().message;
    EXPECT_FALSE(*one) << "limits do not touch the config space";
    auto first = request(VIRTIO_BLK_T_IN, 0, 512, true);
    auto second = request(VIRTIO_BLK_T_IN, 1, 512, true);
    expected_ops_ = 1;
    run();
    EXPECT_EQ(status(first), VIRTIO_BLK_S_OK);
    EXPECT_EQ(status(second), 0xee) << "held back by the new ops bucket";
    ASSERT_TRUE(device->config().rate_limiter);
    EXPECT_TRUE(device->config().rate_limiter->ops);

    // An ops bucket of size 0 turns the limit off; the held request goes at once, no timer.
    auto off = device->update(
        DriveUpdate{"rootfs", std::nullopt,
                    RateLimiterConfig{std::nullopt, TokenBucketConfig{0, std::nullopt, 0}}});
    ASSERT_TRUE(off) << off.error().message;
    expected_ops_ = 2;
    settle();
    EXPECT_EQ(status(second), VIRTIO_BLK_S_OK);
}

// Whether this host's file system takes RWF_NOWAIT reads or writes on the image at once.
bool takes_nowait(const std::string& path, bool write) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    char byte = 0;
    iovec v{&byte, 1};
    const ssize_t n = write ? ::pwritev2(fd.get(), &v, 1, 0, RWF_NOWAIT)
                            : ::preadv2(fd.get(), &v, 1, 0, RWF_NOWAIT);
    return n == 1;
}

// A write the page cache takes and a read it holds are answered before the notification returns,
// on either engine: io_uring's completion, eventfd and epoll round trip is for what must wait.
TEST_P(BlockTest, WhatThePageCacheTakesAtOnceIsAnsweredWithinTheNotification) {
    start();
    const bool writes = takes_nowait(image, true), reads = takes_nowait(image, false);
    std::printf("this file system takes RWF_NOWAIT writes: %s, reads: %s\n", writes ? "yes" : "no",
                reads ? "yes" : "no");
    auto w = request(VIRTIO_BLK_T_OUT, 8, 4096, false);
    h->fill(w.data, std::string(4096, 'w'));
    device->process_queue(0);
    if (writes || GetParam() == IoEngineType::Sync) {
        EXPECT_EQ(status(w), VIRTIO_BLK_S_OK);
        EXPECT_EQ(h->used().size(), 1u);
    }
    settle();
    EXPECT_EQ(status(w), VIRTIO_BLK_S_OK);
    auto r = request(VIRTIO_BLK_T_IN, 8, 4096, true);
    device->process_queue(0);
    if (reads || GetParam() == IoEngineType::Sync) {
        EXPECT_EQ(status(r), VIRTIO_BLK_S_OK);
        EXPECT_EQ(h->used().size(), 2u);
    }
    settle();
    EXPECT_EQ(h->read(r.data, 4096), std::string(4096, 'w'));
    EXPECT_EQ(image_bytes(8 * 512, 4096), std::string(4096, 'w'));
    EXPECT_EQ(device->counters().write_bytes, 4096u);
    EXPECT_EQ(device->counters().read_bytes, 4096u);
}

TEST_P(BlockTest, ResetWaitsForInFlightIoAndWritesNothingAfter) {
    start();
    auto r = request(VIRTIO_BLK_T_IN, 0, 512, true);
    device->process_queue(0);
    device->reset();
    // Whether the I/O had finished or not, the device reports nothing after a reset.
    uint16_t used = h->used_idx();
    device->process_completions();
    EXPECT_EQ(h->used_idx(), used);
    (void)r;
}

TEST(BlockDeviceCreate, ImageErrorsAreClear) {
    testing::TempDir dir;
    testing::CountingIrq irq;
    Interrupt interrupt(irq);
    VirtqHarness h;
    DriveConfig c;
    c.drive_id = "data";
    c.path_on_host = dir.path() + "/missing.img";
    auto missing = BlockDevice::create(c, h.mem(), interrupt, {});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("No such file or directory (os error 2) " +
                                           c.path_on_host + " (drive 'data')"),
              std::string::npos);
    c.path_on_host = dir.write("odd.img", std::string(1000, 'x'));
    auto odd = BlockDevice::create(c, h.mem(), interrupt, {});
    ASSERT_FALSE(odd);
    EXPECT_NE(odd.error().message.find("not a multiple of 512"), std::string::npos);
    c.path_on_host = dir.path();
    EXPECT_FALSE(BlockDevice::create(c, h.mem(), interrupt, {}));
    // A read-only open() of a FIFO would wait for a writer for ever.
    c.path_on_host = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(c.path_on_host.c_str(), 0600), 0);
    c.is_read_only = true;
    auto fifo = BlockDevice::create(c, h.mem(), interrupt, {});
    ASSERT_FALSE(fifo);
    EXPECT_NE(fifo.error().message.find("not a regular file or block device " + c.path_on_host),
              std::string::npos)
        << fifo.error().message;
}

TEST(BlockDeviceConfig, CapacitySegMaxAndBlockSize) {
    testing::TempDir dir;
    testing::CountingIrq irq;
    Interrupt interrupt(irq);
    VirtqHarness h;
    DriveConfig c;
    c.drive_id = "d";
    c.path_on_host = dir.write("d.img", std::string(8192, '\0'));
    auto dev = BlockDevice::create(c, h.mem(), interrupt, {});
    ASSERT_TRUE(dev);
    uint8_t cfg[24];
    (*dev)->read_config(0, cfg);
    uint64_t capacity;
    uint32_t seg_max, blk_size;
    std::memcpy(&capacity, cfg, 8);
    std::memcpy(&seg_max, cfg + 12, 4);
    std::memcpy(&blk_size, cfg + 20, 4);
    EXPECT_EQ(capacity, 16u);
    EXPECT_EQ(seg_max, 254u);
    EXPECT_EQ(blk_size, 512u);
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockTest,
                         ::testing::Values(IoEngineType::Sync, IoEngineType::Async));

}  // namespace
}  // namespace ember::virtio
