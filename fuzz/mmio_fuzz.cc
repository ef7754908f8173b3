// The virtio-mmio transport as a guest driver drives it: a sequence of register reads and writes
// of any offset, size and value, with the status state machine, feature negotiation and queue
// setup in whatever order the input picks. The device behind it checks every activation; at the
// end the transport's state must survive a save and restore byte for byte.
#include <fuzzer/FuzzedDataProvider.h>

#include "core/base/log.h"
#include "core/event_loop/event_loop.h"
#include "fuzz/support/fake_device.h"
#include "fuzz/support/fuzzed_queues.h"
#include "fuzz/support/require.h"
#include "virtio/mmio/mmio_transport.h"
#include "virtio/mmio/persist.h"

using namespace ember;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const GuestMemory mem = [] {
        log::set_level(log::Level::Off);
        return fuzz::make_guest_memory();
    }();
    FuzzedDataProvider in(data, size);
    fuzz::FakeDevice device(mem);
    fuzz::NullIrq irq;
    virtio::Interrupt interrupt(irq);
    auto transport = virtio::MmioTransport::create(device, interrupt, mem, nullptr, 0xd0000000);
    require(transport.has_value(), "a transport can be made");
    auto& t = **transport;
    // The VMM thread's turn: lifecycle requests and kicks, as its loop runs them.
    auto made = EventLoop::create();
    require(made.has_value(), "an event loop can be made");
    EventLoop& loop = *made;
    require(t.attach(loop).has_value(), "the transport joins the loop");
    auto turn = [&loop] {
        for (auto n = loop.run_once(0); n && *n > 0; n = loop.run_once(0)) {
        }
    };

    while (in.remaining_bytes() > 0) {
        const uint8_t op = in.ConsumeIntegral<uint8_t>();
        // Offsets past the config space too: the slot is 4 KiB.
        const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, 0x1000);
        const size_t len = size_t{1} << (op & 3);  // 1, 2, 4 or 8 bytes
        uint8_t bytes[8] = {};
        if (op & 4) {
            const uint64_t value = in.ConsumeIntegral<uint64_t>();
            std::memcpy(bytes, &value, sizeof value);
            t.write(offset, std::span<const uint8_t>(bytes, len));
        } else {
            t.read(offset, std::span<uint8_t>(bytes, len));
        }
        if (op & 8) turn();
        if (op & 16) (void)device.queue_states();
    }
    turn();

    const std::vector<uint8_t> saved = t.save();
    fuzz::FakeDevice device2(mem);
    virtio::Interrupt interrupt2(irq);
    auto restored = virtio::MmioTransport::create(device2, interrupt2, mem, nullptr, 0xd0000000);
    require(restored.has_value(), "a second transport can be made");
    auto back =
        (*restored)->restore(std::span<const uint8_t>(saved), virtio::kTransportSection.version);
    if (!back) std::fprintf(stderr, "%s\n", back.error().message.c_str());
    require(back.has_value(), "a transport restores what it saved");
    require((*restored)->save() == saved, "a restored transport saves the same state");
    return 0;
}
