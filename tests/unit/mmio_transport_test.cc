// The virtio-mmio transport driven register by register, as a guest driver would, against a fake
// device that records what the transport asks of it.
#include <gtest/gtest.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/virtq_harness.h"
#include "tests/unit/fake_irq.h"
#include "virtio/mmio/mmio_transport.h"
#include "virtio/mmio/persist.h"

namespace ember::virtio {
namespace {

struct FakeDevice : VirtioDevice {
    std::string_view kind() const override { return "fake"; }
    const std::string& id() const override { return name; }
    uint32_t device_type() const override { return 2; }
    uint64_t offered_features() const override {
        return kFVersion1 | (1ull << kRingFEventIdx) | (1ull << 5);
    }
    size_t queue_count() const override { return 1; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override {
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0x10 + offset + i);
    }
    Result<void> activate(uint64_t features, std::vector<Queue> q) override {
        if (fail_activation) return fail("no backend");
        if (during_activation) during_activation();
        acked = features;
        queues = std::move(q);
        ++activations;
        events.emplace_back("activated");  // where a device forgets reset_requested()
        return {};
    }
    void process_queue(size_t) override {
        ++processed;
        events.emplace_back("processed");
    }
    void reset() override {
        queues.clear();
        ++resets;
    }
    void reset_requested() override {
        ++reset_requests;
        events.emplace_back("reset requested");
    }
    std::vector<QueueState> queue_states() const override {
        std::vector<QueueState> out;
        for (const auto& q : queues) out.push_back(q.state());
        return out;
    }

    std::string name = "fake";
    bool fail_activation = false;
    uint64_t acked = 0;
    std::vector<Queue> queues;
    int activations = 0, processed = 0, resets = 0, reset_requests = 0;
    std::vector<std::string> events;
    std::function<void()> during_activation;  // runs inside activate(), as another thread might
};

class TransportTest : public ::testing::Test {
  protected:
    TransportTest()
        : interrupt(irq),
          transport(*MmioTransport::create(dev, interrupt, h.mem(), nullptr, 0xd0000000)) {
        EXPECT_TRUE(transport->attach(loop));
    }

    // The VMM thread's turn: the lifecycle requests and kicks its loop has ready, until none is.
    void turn() {
        for (auto n = loop.run_once(0); n && *n > 0; n = loop.run_once(0)) {
        }
    }

    uint32_t rd(uint64_t off) {
        uint32_t v = 0;
        transport->read(off, std::span(reinterpret_cast<uint8_t*>(&v), 4));
        return v;
    }
    void wr(uint64_t off, uint32_t v) {
        transport->write(off, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
    }

    // The Linux driver's sequence up to FEATURES_OK, accepting `features`.
    void negotiate(uint64_t features) {
        wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
        wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
        wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
        wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
        wr(VIRTIO_MMIO_STATUS,
           VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    }
    void setup_queue(uint64_t desc = testing::VirtqHarness::kDescTable) {
        wr(VIRTIO_MMIO_QUEUE_SEL, 0);
        wr(VIRTIO_MMIO_QUEUE_NUM, 16);
        wr(VIRTIO_MMIO_QUEUE_DESC_LOW, static_cast<uint32_t>(desc));
        wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
        wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, testing::VirtqHarness::kAvail);
        wr(VIRTIO_MMIO_QUEUE_USED_LOW, testing::VirtqHarness::kUsed);
        wr(VIRTIO_MMIO_QUEUE_READY, 1);
    }
    void driver_ok() {
        wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
        turn();
    }

    // A second transport, over `other`, restored from `saved` as a new ember would restore it.
    std::unique_ptr<MmioTransport> restore_other(const std::vector<uint8_t>& saved) {
        auto t = MmioTransport::create(other, other_interrupt, h.mem(), nullptr, 0xd0000000);
        if (!t) {
            ADD_FAILURE() << t.error().message;
            return nullptr;
        }
        if (auto r = (*t)->restore(std::span<const uint8_t>(saved), kTransportSection.version);
            !r) {
            ADD_FAILURE() << r.error().message;
            return nullptr;
        }
        EXPECT_TRUE((*t)->attach(loop));
        return std::move(*t);
    }

    EventLoop loop = std::move(*EventLoop::create());
    testing::VirtqHarness h;
    testing::CountingIrq irq;
    FakeDevice dev;
    Interrupt interrupt;
    std::unique_ptr<MmioTransport> transport;
    FakeDevice other;
    Interrupt other_interrupt{irq};
};

TEST_F(TransportTest, IdentifiesAsAVersion2Device) {
    EXPECT_EQ(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);
    EXPECT_EQ(rd(VIRTIO_MMIO_VERSION), 2u);
    EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_ID), 2u);
    EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 256u);
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u) << "no second queue";
}

TEST_F(TransportTest, AConfigChangeIsANewGenerationAndAnInterrupt) {
    const uint32_t generation = rd(VIRTIO_MMIO_CONFIG_GENERATION);
    const int irqs = irq.count;
    transport->config_changed();
    EXPECT_EQ(rd(VIRTIO_MMIO_CONFIG_GENERATION), generation + 1);
    EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & kInterruptConfigChange, kInterruptConfigChange);
    EXPECT_EQ(irq.count, irqs + 1);
}

TEST_F(TransportTest, FeaturesAreOfferedInTwoHalves) {
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), (1u << kRingFEventIdx) | (1u << 5));
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1u);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0u);
}

TEST_F(TransportTest, FeaturesOkRefusedWithoutVersion1OrWithUnofferedFeatures) {
    negotiate(1ull << 5);
    EXPECT_FALSE(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
    wr(VIRTIO_MMIO_STATUS, 0);
    negotiate(kFVersion1 | (1ull << 7));
    EXPECT_FALSE(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
    wr(VIRTIO_MMIO_STATUS, 0);
    negotiate(kFVersion1 | (1ull << 5));
    EXPECT_TRUE(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
}

TEST_F(TransportTest, DriverOkActivatesWithTheNegotiatedQueues) {
    negotiate(kFVersion1 | (1ull << kRingFEventIdx));
    setup_queue();
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);  // an early kick, before the device is live
    driver_ok();
    EXPECT_EQ(dev.activations, 1);
    EXPECT_TRUE(transport->active());
    EXPECT_EQ(dev.acked, kFVersion1 | (1ull << kRingFEventIdx));
    ASSERT_EQ(dev.queues.size(), 1u);
    EXPECT_EQ(dev.queues[0].state().size, 16);
    EXPECT_TRUE(dev.queues[0].state().event_idx);
    EXPECT_FALSE(dev.queues[0].state().indirect);
    EXPECT_GE(dev.processed, 1) << "the early kick is not lost";
    int before = dev.processed;
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    turn();
    EXPECT_EQ(dev.processed, before + 1);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 7);  // no such queue: ignored
    turn();
    EXPECT_EQ(dev.processed, before + 1);
}

TEST_F(TransportTest, QueueSetupIsFrozenWhileLive) {
    negotiate(kFVersion1);
    setup_queue();
    driver_ok();
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x8000);
    wr(VIRTIO_MMIO_QUEUE_NUM, 4);
    EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_DESC_LOW), testing::VirtqHarness::kDescTable);
}

TEST_F(TransportTest, ResetStopsTheDeviceAndClearsEverything) {
    negotiate(kFVersion1);
    setup_queue();
    driver_ok();
    interrupt.raise(kInterruptUsedRing);
    wr(VIRTIO_MMIO_STATUS, 0);
    EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
    EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
    EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
    // The device is told at once, on the writing thread; its reset runs with the pending work.
    EXPECT_EQ(dev.reset_requests, 1);
    EXPECT_EQ(dev.resets, 0);
    turn();
    EXPECT_EQ(dev.resets, 1);
    EXPECT_FALSE(transport->active());
    // And it can be brought up again.
    negotiate(kFVersion1);
    setup_queue();
    driver_ok();
    EXPECT_EQ(dev.activations, 2);
}

// The driver writes on its vCPU thread; the device starts and stops on the VMM thread, later.
TEST_F(TransportTest, AnActivationTheDriverResetBeforeItRanIsNotStarted) {
    negotiate(kFVersion1);
    setup_queue();
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                               VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    wr(VIRTIO_MMIO_STATUS, 0);
    turn();
    EXPECT_EQ(dev.activations, 0);
    EXPECT_EQ(dev.processed, 0);
    EXPECT_FALSE(transport->active());
}

TEST_F(TransportTest, AResetAskedForWhileTheDeviceStartsHoldsItBeforeItLooksAtARing) {
    negotiate(kFVersion1);
    setup_queue();
    dev.during_activation = [&] { wr(VIRTIO_MMIO_STATUS, 0); };
    driver_ok();
    const std::vector<std::string> started = {"reset requested", "activated", "reset requested",
                                              "processed"};
    ASSERT_GE(dev.events.size(), started.size());
    EXPECT_EQ(std::vector<std::string>(dev.events.begin(), dev.events.begin() + 4), started)
        << "the device must be told again after its activate(), before its queues are looked at";
    dev.during_activation = nullptr;
    turn();
    EXPECT_EQ(dev.resets, 1);
    EXPECT_FALSE(transport->active());
}

TEST_F(TransportTest, InvalidQueueSetsNeedsResetInsteadOfActivating) {
    negotiate(kFVersion1);
    setup_queue(0x1008);  // misaligned descriptor table
    int irqs = irq.count;
    driver_ok();
    EXPECT_EQ(dev.activations, 0);
    EXPECT_TRUE(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    EXPECT_TRUE(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & kInterruptConfigChange);
    EXPECT_GT(irq.count, irqs);
}

TEST_F(TransportTest, FailedActivationSetsNeedsReset) {
    dev.fail_activation = true;
    negotiate(kFVersion1);
    setup_queue();
    driver_ok();
    EXPECT_FALSE(transport->active());
    EXPECT_TRUE(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    EXPECT_EQ(transport->counters().activation_failures, 1u);
}

TEST_F(TransportTest, DriverOkWithoutFeaturesOkIsIgnored) {
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    setup_queue();
    wr(VIRTIO_MMIO_STATUS,
       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
    turn();
    EXPECT_EQ(dev.activations, 0);
    EXPECT_FALSE(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
}

TEST_F(TransportTest, InterruptAckClearsOnlyTheAcknowledgedBits) {
    interrupt.raise(kInterruptUsedRing | kInterruptConfigChange);
    EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 3u);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, kInterruptUsedRing);
    EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 2u);
}

TEST_F(TransportTest, ConfigSpaceAndOddAccesses) {
    uint8_t cfg[2];
    transport->read(VIRTIO_MMIO_CONFIG + 4, cfg);
    EXPECT_EQ(cfg[0], 0x14);
    EXPECT_EQ(cfg[1], 0x15);
    uint16_t narrow = 0xffff;
    transport->read(VIRTIO_MMIO_MAGIC_VALUE, std::span(reinterpret_cast<uint8_t*>(&narrow), 2));
    EXPECT_EQ(narrow, 0) << "registers are 32-bit only";
    uint8_t one = 1;
    transport->write(VIRTIO_MMIO_STATUS, std::span(&one, 1));
    EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
}

// Found by fuzz/mmio_fuzz: a QUEUE_NUM above the maximum, written but never made live, made the
// VM's snapshot one that no restore would take.
TEST_F(TransportTest, AQueueSizeAboveTheMaximumNotYetLiveSurvivesASnapshot) {
    negotiate(kFVersion1);
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, 1000);
    const std::vector<uint8_t> saved = transport->save();
    auto restored = restore_other(saved);
    ASSERT_TRUE(restored);
    EXPECT_EQ(restored->save(), saved);
    EXPECT_EQ(other.activations, 0);
}

// A snapshot taken between the driver's reset and the device's: what the driver set up is gone.
TEST_F(TransportTest, ASnapshotTakenBeforeAResetRanSavesTheDeviceReset) {
    negotiate(kFVersion1);
    setup_queue();
    driver_ok();
    ASSERT_TRUE(transport->active());
    wr(VIRTIO_MMIO_STATUS, 0);
    auto restored = restore_other(transport->save());
    ASSERT_TRUE(restored);
    EXPECT_EQ(other.activations, 0);
    uint32_t ready = 1;
    restored->read(VIRTIO_MMIO_QUEUE_READY, std::span(reinterpret_cast<uint8_t*>(&ready), 4));
    EXPECT_EQ(ready, 0u);
}

// A restore that fails after this device (a later device's section, the vCPUs) must not have served
// the requests the guest left in the queues: they wait as kicks for the event loop.
TEST_F(TransportTest, ARestoredLiveDeviceServesItsQueuesOnlyFromTheLoop) {
    negotiate(kFVersion1);
    setup_queue();
    driver_ok();
    ASSERT_TRUE(transport->active());
    const std::vector<uint8_t> saved = transport->save();
    auto restored = restore_other(saved);
    ASSERT_TRUE(restored);
    EXPECT_EQ(other.activations, 1);
    EXPECT_EQ(other.processed, 0);
    turn();
    EXPECT_EQ(other.processed, 1) << "each queue is looked at once, from the loop";
}

}  // namespace
}  // namespace ember::virtio
