// The split virtqueue as a hostile guest can write it: descriptor tables (indirect ones too),
// ring indices and flags, event indices. Every chain the queue hands out must be usable as it is:
// each buffer wholly inside one region of guest memory, readable buffers before writable ones,
// no longer than the bound on a chain, and never more chains than the ring can hold. A second
// queue over the same rings pops into one reused chain (pop_into, as virtio-net does): nothing of
// an earlier chain, or of a walk that failed part way, may show in it, so it must hold exactly
// what pop()'s new chain does.

#include "fuzz/support/fuzzed_queues.h"
#include "fuzz/support/require.h"

using namespace ember;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const GuestMemory mem = fuzz::make_guest_memory();
    FuzzedDataProvider in(data, size);
    const virtio::QueueState state = fuzz::fuzzed_queue(in, 0);
    const uint8_t written_per_chain = in.ConsumeIntegral<uint8_t>();
    fuzz::fill_guest_memory(mem, in);

    virtio::Queue q(state);
    if (!q.validate(mem)) return 0;
    virtio::Queue reused(state);
    virtio::DescriptorChain scratch;
    size_t popped = 0;
    for (;;) {
        auto next = q.pop(mem);
        auto into = reused.pop_into(mem, scratch);
        require(next.has_value() == into.has_value(), "pop_into breaks where pop does");
        if (!next) {
            require(q.broken(), "a corrupt ring leaves the queue broken");
            break;
        }
        require(next->has_value() == into->has_value(), "pop_into finds what pop finds");
        if (*next) {
            const auto& [head, chain] = **next;
            require((*into)->head == head && (*into)->chain.has_value() == chain.has_value(),
                    "pop_into takes the same head, as usable or not");
            if (chain)
                require(scratch == *chain, "pop_into's reused chain holds what pop's new one does");
        }
        if (!*next) {
            (void)reused.enable_notification(mem);
            if (!q.enable_notification(mem)) break;
            continue;
        }
        ++popped;
        require(popped <= state.size, "no more chains than the ring holds entries");
        const auto& [head, chain] = **next;
        if (chain) {
            require(head < state.size, "a usable chain's head is inside the queue");
            require(chain->head == head, "the chain is the head's");
            require(!chain->descriptors.empty(), "a chain has a buffer");
            require(chain->descriptors.size() <= virtio::kMaxChainDescriptors, "a bounded chain");
            require(chain->readable_count <= chain->descriptors.size(), "readable count in range");
            for (size_t i = 0; i < chain->descriptors.size(); ++i) {
                const auto& d = chain->descriptors[i];
                require(d.device_writable == (i >= chain->readable_count),
                        "readable buffers first, then writable ones");
                require(fuzz::inside_one_region(mem, d.addr, d.len),
                        "every buffer inside one region of guest memory");
                require(mem.slice(d.addr, d.len).has_value(), "every buffer can be reached");
            }
        }
        (void)q.add_used(mem, head, written_per_chain);
        (void)reused.add_used(mem, head, written_per_chain);
        (void)q.needs_notification(mem);
    }
    // The next kick: a broken queue hands out nothing and never asks its device to go round again.
    if (q.broken()) {
        auto again = q.pop(mem);
        require(again.has_value() && !*again, "a broken queue hands out nothing more");
        require(!q.enable_notification(mem), "a broken queue never asks to be gone round again");
    }
    return 0;
}
