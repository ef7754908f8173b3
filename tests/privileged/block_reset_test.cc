// virtio-blk reset by its driver while its image holds a request unanswered (a FUSE file the test
// holds, as a hung network file system would), through the host queue harness: the reset ends
// within its bound, the head left in flight is refused until the image answers, and that answer
// reaches neither the used ring nor the status byte. Root, for the FUSE mount; no KVM.
#include <gtest/gtest.h>
#include <linux/virtio_blk.h>
#include <sys/stat.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/event_loop/event_loop.h"
#include "tests/support/ember_process.h"
#include "tests/support/fuse_file.h"
#include "tests/support/virtq_harness.h"
#include "tests/unit/fake_irq.h"
#include "virtio/block/block_device.h"

namespace ember::virtio {
namespace {

using testing::Buffer;
using testing::FuseFile;
using testing::VirtqHarness;

struct Read {
    uint64_t data, status;
};

Read add_read(VirtqHarness& h, uint64_t sector) {
    Read r{h.alloc(4096), h.alloc(1)};
    const uint64_t hdr_addr = h.alloc(16);
    uint8_t hdr[16] = {};
    const uint32_t type = VIRTIO_BLK_T_IN;
    std::memcpy(hdr, &type, 4);
    std::memcpy(hdr + 8, &sector, 8);
    h.fill(hdr_addr, std::string(reinterpret_cast<char*>(hdr), 16));
    h.fill(r.status, "\xee");  // not a status value: shows whether the device wrote it
    h.add_chain({{hdr_addr, 16}, {r.data, 4096, true}, {r.status, 1, true}});
    return r;
}

std::vector<Queue> queue_of(VirtqHarness& h) {
    std::vector<Queue> queues;
    queues.emplace_back(h.state());
    return queues;
}

// A drive on a FUSE image, active, with one read the image holds unanswered (head 0).
class BlockReset : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string mount_point = dir.path() + "/mnt";
        ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
        std::string why;
        image = FuseFile::mount(mount_point, std::string(1 << 20, 'i'), why);
        ASSERT_TRUE(image) << why;
        DriveConfig config;
        config.drive_id = "stalled";
        config.path_on_host = image->path();
        config.io_engine = IoEngineType::Async;
        auto created = BlockDevice::create(config, h.mem(), interrupt, {});
        ASSERT_TRUE(created) << created.error().message;
        device = std::move(*created);
        ASSERT_EQ(device->config().io_engine, IoEngineType::Async) << "io_uring is needed here";
        h.state().indirect = true;
        ASSERT_TRUE(device->activate(device->offered_features(), queue_of(h)));
        ASSERT_TRUE(device->attach(loop));

        image->hold();
        held = add_read(h, 0);
        device->process_queue(0);
        ASSERT_TRUE(image->wait_held(1));
    }

    testing::TempDir dir;
    std::unique_ptr<FuseFile> image;
    VirtqHarness h;
    testing::CountingIrq irq;
    Interrupt interrupt{irq};
    EventLoop loop = *EventLoop::create();
    std::unique_ptr<BlockDevice> device;
    Read held{};
};

TEST_F(BlockReset, EndsWhileTheImageHoldsARequestAndItsLateAnswerIsDropped) {
    // Unbounded, this would wait for the image for ever.
    device->reset();
    EXPECT_EQ(h.used_idx(), 0);

    // The driver sets the queue up again from its start, so the held request's head comes again
    // while the image still holds it: refused, but returned.
    ASSERT_TRUE(device->activate(device->offered_features(), queue_of(h)));
    device->process_queue(0);
    EXPECT_EQ(h.used_idx(), 1);
    EXPECT_EQ(static_cast<uint8_t>(h.read(held.status, 1)[0]), VIRTIO_BLK_S_IOERR);

    // Reset again while the image still holds it (the device does not wait for it again), and set
    // up again: still refused.
    h.fill(held.status, "\xee");
    device->reset();
    ASSERT_TRUE(device->activate(device->offered_features(), queue_of(h)));
    device->process_queue(0);
    EXPECT_EQ(h.used_idx(), 1);
    EXPECT_EQ(static_cast<uint8_t>(h.read(held.status, 1)[0]), VIRTIO_BLK_S_IOERR);

    // The image answers: the kernel fills the buffer, and the device drops the completion.
    image->release();
    ASSERT_TRUE(device->quiesce());
    EXPECT_EQ(h.read(held.data, 4096), std::string(4096, 'i'));
    EXPECT_EQ(h.used_idx(), 1);
    EXPECT_EQ(static_cast<uint8_t>(h.read(held.status, 1)[0]), VIRTIO_BLK_S_IOERR);

    // The drive serves on.
    const Read next = add_read(h, 8);
    device->process_queue(0);
    ASSERT_TRUE(device->quiesce());
    EXPECT_EQ(h.used_idx(), 2);
    EXPECT_EQ(static_cast<uint8_t>(h.read(next.status, 1)[0]), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h.read(next.data, 4096), std::string(4096, 'i'));
}

// Between the driver's write of status 0 (the vCPU thread) and reset() (the VMM thread), a request
// that ends is dropped too: the driver sees nothing of the device after its write.
TEST_F(BlockReset, ARequestEndingBeforeTheResetRunsIsDroppedAsWell) {
    device->reset_requested();
    image->release();
    ASSERT_TRUE(device->quiesce());
    EXPECT_EQ(h.used_idx(), 0);
    EXPECT_EQ(static_cast<uint8_t>(h.read(held.status, 1)[0]), 0xee);
    EXPECT_EQ(irq.count, 0);

    // Nothing is left for the reset to wait for, and the drive serves on once set up again.
    device->reset();
    ASSERT_TRUE(device->activate(device->offered_features(), queue_of(h)));
    device->process_queue(0);
    ASSERT_TRUE(device->quiesce());
    EXPECT_EQ(h.used_idx(), 1);
    EXPECT_EQ(static_cast<uint8_t>(h.read(held.status, 1)[0]), VIRTIO_BLK_S_OK);
}

}  // namespace
}  // namespace ember::virtio
