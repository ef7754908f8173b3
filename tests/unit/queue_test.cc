// The split virtqueue against well-formed chains and every malformed shape a guest can write.
#include <gtest/gtest.h>

#include "tests/support/virtq_harness.h"
#include "virtio/queue/queue.h"

namespace ember::virtio {
namespace {

using testing::Buffer;
using testing::VirtqHarness;

std::string chain_error(Queue& q, const GuestMemory& mem) {
    auto popped = q.pop(mem);
    if (!popped) return "ring broken: " + popped.error().message;
    if (!*popped) return "(nothing available)";
    if ((*popped)->chain) return "(valid chain)";
    return (*popped)->chain.error().message;
}

TEST(Queue, PopsWellFormedChainsInOrderWithReadableBeforeWritable) {
    VirtqHarness h;
    Queue q(h.state());
    ASSERT_TRUE(q.validate(h.mem()));
    auto a = h.alloc(16), b = h.alloc(512), c = h.alloc(1);
    uint16_t head = h.add_chain({{a, 16}, {b, 512, true}, {c, 1, true}});
    h.add_chain({{a, 16}});
    auto first = q.pop(h.mem());
    ASSERT_TRUE(first && *first);
    ASSERT_TRUE((*first)->chain) << (*first)->chain.error().message;
    EXPECT_EQ((*first)->head, head);
    const auto& chain = *(*first)->chain;
    ASSERT_EQ(chain.descriptors.size(), 3u);
    EXPECT_EQ(chain.readable().size(), 1u);
    EXPECT_EQ(chain.writable().size(), 2u);
    EXPECT_EQ(chain.writable()[0].addr, b);
    EXPECT_EQ(chain.writable()[0].len, 512u);
    auto second = q.pop(h.mem());
    ASSERT_TRUE(second && *second && (*second)->chain);
    EXPECT_EQ((*second)->chain->descriptors.size(), 1u);
    auto empty = q.pop(h.mem());
    ASSERT_TRUE(empty);
    EXPECT_FALSE(*empty);
}

TEST(Queue, PopIntoReusesOneChainAndHoldsOnlyTheLastChainsBuffers) {
    VirtqHarness h;
    Queue q(h.state());
    auto a = h.alloc(16), b = h.alloc(512), c = h.alloc(64);
    h.add_chain({{a, 16}, {b, 512, true}, {c, 64, true}});
    // A chain that loops: its walk fails part way, after it has taken a buffer.
    h.write_desc(10, a, 16, kDescFNext, 11);
    h.write_desc(11, b, 8, kDescFNext, 10);
    h.publish(10);
    const uint16_t last = h.add_chain({{c, 64, true}});
    DescriptorChain chain;
    auto first = q.pop_into(h.mem(), chain);
    ASSERT_TRUE(first && *first && (*first)->chain);
    EXPECT_EQ(chain.descriptors.size(), 3u);
    EXPECT_EQ(chain.readable_count, 1u);
    auto broken = q.pop_into(h.mem(), chain);
    ASSERT_TRUE(broken && *broken);
    EXPECT_EQ((*broken)->head, 10);
    ASSERT_FALSE((*broken)->chain);
    EXPECT_NE((*broken)->chain.error().message.find("loops"), std::string::npos);
    auto third = q.pop_into(h.mem(), chain);
    ASSERT_TRUE(third && *third && (*third)->chain);
    EXPECT_EQ((*third)->head, last);
    EXPECT_EQ(chain.head, last);
    ASSERT_EQ(chain.descriptors.size(), 1u) << "nothing of the chains before it";
    EXPECT_EQ(chain.readable_count, 0u);
    EXPECT_EQ(chain.descriptors[0].addr, c);
    EXPECT_TRUE(chain.descriptors[0].device_writable);
    auto none = q.pop_into(h.mem(), chain);
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
}

TEST(Queue, AddUsedPublishesEntriesAndTheIndex) {
    VirtqHarness h;
    Queue q(h.state());
    uint16_t head = h.add_chain({{h.alloc(8), 8, true}});
    ASSERT_TRUE(q.pop(h.mem()));
    ASSERT_TRUE(q.add_used(h.mem(), head, 8));
    ASSERT_EQ(h.used().size(), 1u);
    EXPECT_EQ(h.used()[0], (std::pair<uint32_t, uint32_t>{head, 8}));
    EXPECT_FALSE(q.add_used(h.mem(), h.size(), 0)) << "a head outside the queue is refused";
}

TEST(Queue, ValidateRejectsBadGeometry) {
    VirtqHarness h;
    auto s = h.state();
    s.size = 12;
    EXPECT_FALSE(Queue(s).validate(h.mem())) << "not a power of two";
    s = h.state();
    s.size = 512;
    EXPECT_FALSE(Queue(s).validate(h.mem())) << "above the maximum";
    s = h.state();
    s.desc_table = 0x1008;
    EXPECT_FALSE(Queue(s).validate(h.mem())) << "misaligned";
    s = h.state();
    s.used_ring = (4 << 20) - 8;
    EXPECT_FALSE(Queue(s).validate(h.mem())) << "outside guest memory";
}

TEST(Queue, HeadIndexOutOfRange) {
    VirtqHarness h;
    Queue q(h.state());
    h.publish(200);
    EXPECT_NE(chain_error(q, h.mem()).find("out of range"), std::string::npos);
}

TEST(Queue, NextIndexOutOfRange) {
    VirtqHarness h;
    Queue q(h.state());
    h.write_desc(0, h.alloc(8), 8, kDescFNext, 99);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("out of range"), std::string::npos);
}

TEST(Queue, LoopingChain) {
    VirtqHarness h;
    Queue q(h.state());
    uint64_t buf = h.alloc(8);
    h.write_desc(0, buf, 8, kDescFNext, 1);
    h.write_desc(1, buf, 8, kDescFNext, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("loops"), std::string::npos);
}

TEST(Queue, SelfLoop) {
    VirtqHarness h;
    Queue q(h.state());
    h.write_desc(3, h.alloc(8), 8, kDescFNext, 3);
    h.publish(3);
    EXPECT_NE(chain_error(q, h.mem()).find("loops"), std::string::npos);
}

TEST(Queue, ChainLongerThanTheQueue) {
    VirtqHarness h(8);
    Queue q(h.state());
    // A valid-looking path through all 8 descriptors that then wraps to the first again.
    for (uint16_t i = 0; i < 8; ++i) h.write_desc(i, h.alloc(8), 8, kDescFNext, (i + 1) % 8);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("longer than its table"), std::string::npos);
}

TEST(Queue, BufferOutsideGuestMemory) {
    VirtqHarness h;
    Queue q(h.state());
    h.add_chain({{64ull << 20, 16}});
    EXPECT_NE(chain_error(q, h.mem()).find("not in guest memory"), std::string::npos);
}

TEST(Queue, BufferCrossingTheEndOfARegion) {
    VirtqHarness h;
    Queue q(h.state());
    h.add_chain({{(4 << 20) - 8, 16}});
    EXPECT_NE(chain_error(q, h.mem()).find("runs past the end"), std::string::npos);
}

TEST(Queue, BufferWhoseLengthWrapsTheAddressSpace) {
    VirtqHarness h;
    Queue q(h.state());
    h.write_desc(0, UINT64_MAX - 4, 0xffffffff, 0, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("descriptor buffer"), std::string::npos);
}

TEST(Queue, ReadableAfterWritable) {
    VirtqHarness h;
    Queue q(h.state());
    h.add_chain({{h.alloc(8), 8, true}, {h.alloc(8), 8, false}});
    EXPECT_NE(chain_error(q, h.mem()).find("device-readable descriptor after a device-writable"),
              std::string::npos);
}

class IndirectTest : public ::testing::Test {
  protected:
    IndirectTest() {
        h.state().indirect = true;
        table = h.alloc(4096);
    }
    void write_indirect(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        h.write_desc_at(table, i, addr, len, flags, next);
    }
    VirtqHarness h;
    uint64_t table;
};

TEST_F(IndirectTest, IndirectTableIsFollowed) {
    Queue q(h.state());
    auto hdr = h.alloc(16), data = h.alloc(4096), status = h.alloc(1);
    write_indirect(0, hdr, 16, kDescFNext, 1);
    write_indirect(1, data, 4096, kDescFNext | kDescFWrite, 2);
    write_indirect(2, status, 1, kDescFWrite, 0);
    h.write_desc(0, table, 48, kDescFIndirect, 0);
    h.publish(0);
    auto popped = q.pop(h.mem());
    ASSERT_TRUE(popped && *popped && (*popped)->chain) << chain_error(q, h.mem());
    EXPECT_EQ((*popped)->chain->descriptors.size(), 3u);
    EXPECT_EQ((*popped)->chain->writable().size(), 2u);
}

TEST_F(IndirectTest, RefusedWhenNotNegotiated) {
    h.state().indirect = false;
    Queue q(h.state());
    write_indirect(0, h.alloc(8), 8, 0, 0);
    h.write_desc(0, table, 16, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("indirect descriptor where none is allowed"),
              std::string::npos);
}

TEST_F(IndirectTest, NestedIndirect) {
    Queue q(h.state());
    write_indirect(0, table, 16, kDescFIndirect, 0);
    h.write_desc(0, table, 16, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("indirect descriptor where none is allowed"),
              std::string::npos);
}

TEST_F(IndirectTest, IndirectWithNext) {
    Queue q(h.state());
    h.write_desc(0, table, 16, kDescFIndirect | kDescFNext, 1);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("also has NEXT"), std::string::npos);
}

TEST_F(IndirectTest, LengthNotAMultipleOfSixteen) {
    Queue q(h.state());
    h.write_desc(0, table, 24, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("not a multiple of 16"), std::string::npos);
}

TEST_F(IndirectTest, EmptyTable) {
    Queue q(h.state());
    h.write_desc(0, table, 0, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("not a multiple of 16"), std::string::npos);
}

TEST_F(IndirectTest, TableOutsideGuestMemory) {
    Queue q(h.state());
    h.write_desc(0, (4 << 20) - 16, 32, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("indirect table"), std::string::npos);
}

TEST_F(IndirectTest, TooManyEntries) {
    Queue q(h.state());
    h.write_desc(0, table, 16 * 1024, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("indirect table of 1024 entries"), std::string::npos);
}

TEST_F(IndirectTest, LoopInsideTheTable) {
    Queue q(h.state());
    write_indirect(0, h.alloc(8), 8, kDescFNext, 1);
    write_indirect(1, h.alloc(8), 8, kDescFNext, 0);
    h.write_desc(0, table, 32, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("loops"), std::string::npos);
}

TEST_F(IndirectTest, NextOutOfTheTable) {
    Queue q(h.state());
    write_indirect(0, h.alloc(8), 8, kDescFNext, 5);
    h.write_desc(0, table, 32, kDescFIndirect, 0);
    h.publish(0);
    EXPECT_NE(chain_error(q, h.mem()).find("out of range (table of 2)"), std::string::npos);
}

TEST(Queue, AvailIndexRunningAheadBreaksTheQueueUntilReset) {
    VirtqHarness h;
    Queue q(h.state());
    h.set_avail_idx(100);
    auto popped = q.pop(h.mem());
    ASSERT_FALSE(popped);
    EXPECT_NE(popped.error().message.find("ran 100 entries ahead"), std::string::npos);
    EXPECT_TRUE(q.broken());
    auto again = q.pop(h.mem());
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again) << "a broken queue yields nothing more";
}

// Found by fuzz/block_fuzz: a broken queue still said chains were waiting, so a device that goes
// round again on that answer spun its thread for ever at the guest's next kick.
TEST(Queue, ABrokenQueueNeverAsksItsDeviceToGoRoundAgain) {
    VirtqHarness h;
    h.state().event_idx = true;
    Queue q(h.state());
    h.set_avail_idx(100);
    ASSERT_FALSE(q.pop(h.mem()));
    ASSERT_TRUE(q.broken());
    EXPECT_FALSE(q.enable_notification(h.mem()));
}

TEST(Queue, MalformedChainsStillReturnTheirHead) {
    VirtqHarness h;
    Queue q(h.state());
    h.write_desc(2, 64ull << 20, 8, 0, 0);
    h.publish(2);
    auto popped = q.pop(h.mem());
    ASSERT_TRUE(popped && *popped);
    EXPECT_FALSE((*popped)->chain);
    EXPECT_EQ((*popped)->head, 2);
    ASSERT_TRUE(q.add_used(h.mem(), (*popped)->head, 0));
    EXPECT_EQ(h.used_idx(), 1);
}

TEST(Queue, NoInterruptFlagSuppressesNotificationWithoutEventIdx) {
    VirtqHarness h;
    Queue q(h.state());
    uint16_t head = h.add_chain({{h.alloc(8), 8, true}});
    ASSERT_TRUE(q.pop(h.mem()));
    ASSERT_TRUE(q.add_used(h.mem(), head, 0));
    EXPECT_TRUE(q.needs_notification(h.mem()));
    h.set_avail_flags(kAvailFNoInterrupt);
    ASSERT_TRUE(q.add_used(h.mem(), head, 0));
    EXPECT_FALSE(q.needs_notification(h.mem()));
}

TEST(Queue, EventIdxNotifiesOnlyWhenUsedEventIsCrossed) {
    VirtqHarness h;
    h.state().event_idx = true;
    Queue q(h.state());
    for (int i = 0; i < 6; ++i) h.add_chain({{h.alloc(8), 8, true}});
    auto complete = [&] {
        auto c = q.pop(h.mem());
        ASSERT_TRUE(c && *c);
        ASSERT_TRUE(q.add_used(h.mem(), (*c)->head, 0));
    };
    complete();
    EXPECT_TRUE(q.needs_notification(h.mem())) << "the first notification is always sent";
    h.set_used_event(3);  // driver: interrupt me when used idx passes 3
    complete();           // used idx 2
    EXPECT_FALSE(q.needs_notification(h.mem()));
    complete();  // 3
    EXPECT_FALSE(q.needs_notification(h.mem()));
    complete();  // 4: crosses used_event 3
    EXPECT_TRUE(q.needs_notification(h.mem()));
    complete();  // 5
    EXPECT_FALSE(q.needs_notification(h.mem()));
}

TEST(Queue, EventIdxAvailEventAsksForTheNextKick) {
    VirtqHarness h;
    h.state().event_idx = true;
    Queue q(h.state());
    h.add_chain({{h.alloc(8), 8, true}});
    ASSERT_TRUE(q.pop(h.mem()));
    EXPECT_FALSE(q.enable_notification(h.mem()));
    EXPECT_EQ(h.avail_event(), 1);
    h.add_chain({{h.alloc(8), 8, true}});
    EXPECT_TRUE(q.enable_notification(h.mem())) << "more arrived: go round again";
}

// virtio-net RX may leave chains posted when they are too few for a frame. The driver kicks
// only when its avail index passes avail_event, so avail_event must be what it has posted.
TEST(Queue, EventIdxAvailEventIsWhatTheDriverPostedEvenWhenChainsAreLeftUntaken) {
    VirtqHarness h;
    h.state().event_idx = true;
    Queue q(h.state());
    for (int i = 0; i < 3; ++i) h.add_chain({{h.alloc(8), 8, true}});
    ASSERT_TRUE(q.pop(h.mem()));
    EXPECT_TRUE(q.enable_notification(h.mem())) << "two chains are still posted";
    EXPECT_EQ(h.avail_event(), 3) << "a kick for the 4th chain, not one the driver has passed";
}

}  // namespace
}  // namespace ember::virtio
