// A virtqueue driver on the host: lays the descriptor table and rings out in a GuestMemory the
// way a guest driver would, so tests can hand devices well-formed and hostile chains alike.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/memory/guest_memory.h"
#include "virtio/queue/queue.h"

namespace ember::testing {

// Guest memory from address 0, owned by whoever derives from this (before its other bases).
struct OwnedGuestMemory {
    explicit OwnedGuestMemory(uint64_t bytes) : owned_mem(make(bytes)) {}
    static GuestMemory make(uint64_t bytes) {
        MemoryRegionSpec spec{0, bytes};
        return std::move(*GuestMemory::create_anonymous(std::span(&spec, 1)));
    }
    GuestMemory owned_mem;
};

struct Buffer {
    uint64_t addr;
    uint32_t len;
    bool device_writable = false;
};

// One queue's rings, laid out from `ring_base` in a guest memory someone else owns; buffers are
// handed out from `data_base` up.
class VirtqDriver {
  public:
    VirtqDriver(const GuestMemory& mem, uint16_t size, uint64_t ring_base, uint64_t data_base)
        : mem_(mem),
          size_(size),
          desc_(ring_base + 0x1000),
          avail_(ring_base + 0x3000),
          used_(ring_base + 0x4000),
          next_data_(data_base) {
        state_.size = size;
        state_.desc_table = desc_;
        state_.avail_ring = avail_;
        state_.used_ring = used_;
        state_.ready = true;
    }

    const GuestMemory& mem() const { return mem_; }
    virtio::QueueState& state() { return state_; }
    uint16_t size() const { return size_; }
    uint64_t used_ring() const { return used_; }

    // Guest memory for a buffer, page-aligned so O_DIRECT can use it.
    uint64_t alloc(uint32_t len) {
        uint64_t addr = next_data_;
        next_data_ += (len + 4095) & ~4095ull;
        return addr;
    }

    // A descriptor at `index` of the table at `table` (the queue's own, or an indirect one).
    void write_desc_at(uint64_t table, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                       uint16_t next) {
        uint8_t raw[16];
        std::memcpy(raw, &addr, 8);
        std::memcpy(raw + 8, &len, 4);
        std::memcpy(raw + 12, &flags, 2);
        std::memcpy(raw + 14, &next, 2);
        (void)mem_.write(table + 16ull * index, raw);
    }
    void write_desc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        write_desc_at(desc_, index, addr, len, flags, next);
    }

    // Writes a NEXT-linked chain into free descriptors and makes it available; returns its head.
    uint16_t add_chain(const std::vector<Buffer>& buffers) {
        uint16_t head = next_desc_;
        for (size_t i = 0; i < buffers.size(); ++i) {
            uint16_t index = static_cast<uint16_t>((head + i) % size_);
            bool last = i + 1 == buffers.size();
            uint16_t flags =
                static_cast<uint16_t>((last ? 0 : virtio::kDescFNext) |
                                      (buffers[i].device_writable ? virtio::kDescFWrite : 0));
            write_desc(index, buffers[i].addr, buffers[i].len, flags,
                       static_cast<uint16_t>((index + 1) % size_));
        }
        next_desc_ = static_cast<uint16_t>((head + buffers.size()) % size_);
        publish(head);
        return head;
    }

    // Puts `head` in the available ring and bumps its index, as a driver's kick would follow.
    void publish(uint16_t head) {
        (void)mem_.write_obj<uint16_t>(avail_ + 4 + 2ull * (avail_idx_ % size_), head);
        ++avail_idx_;
        (void)mem_.write_obj<uint16_t>(avail_ + 2, avail_idx_);
    }
    void set_avail_idx(uint16_t idx) {
        avail_idx_ = idx;
        (void)mem_.write_obj<uint16_t>(avail_ + 2, idx);
    }
    void set_avail_flags(uint16_t flags) { (void)mem_.write_obj<uint16_t>(avail_, flags); }
    void set_used_event(uint16_t v) {
        (void)mem_.write_obj<uint16_t>(avail_ + 4 + 2ull * size_, v);
    }
    uint16_t avail_event() const { return *mem_.read_obj<uint16_t>(used_ + 4 + 8ull * size_); }
    uint16_t avail_idx() const { return avail_idx_; }
    // Whether a driver with EVENT_IDX that moved its avail index on from `before` kicks now.
    bool kick_needed(uint16_t before) const {
        return virtio::need_event(avail_event(), avail_idx_, before);
    }

    uint16_t used_idx() const { return *mem_.read_obj<uint16_t>(used_ + 2); }
    // The used ring's entries so far: (head, bytes written).
    std::vector<std::pair<uint32_t, uint32_t>> used() const {
        std::vector<std::pair<uint32_t, uint32_t>> out;
        for (uint16_t i = 0; i < used_idx(); ++i) {
            uint64_t elem = used_ + 4 + 8ull * (i % size_);
            out.emplace_back(*mem_.read_obj<uint32_t>(elem), *mem_.read_obj<uint32_t>(elem + 4));
        }
        return out;
    }

    void fill(uint64_t addr, const std::string& bytes) {
        (void)mem_.write(addr,
                         std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    }
    std::string read(uint64_t addr, size_t len) const {
        std::string out(len, '\0');
        (void)mem_.read(addr, std::span(reinterpret_cast<uint8_t*>(out.data()), len));
        return out;
    }

  private:
    const GuestMemory& mem_;
    uint16_t size_;
    uint64_t desc_, avail_, used_;
    virtio::QueueState state_;
    uint16_t next_desc_ = 0;
    uint16_t avail_idx_ = 0;
    uint64_t next_data_;
};

// Guest memory of its own with one queue at the fixed addresses below.
class VirtqHarness : private OwnedGuestMemory, public VirtqDriver {
  public:
    static constexpr uint64_t kDescTable = 0x1000;
    static constexpr uint64_t kAvail = 0x3000;
    static constexpr uint64_t kUsed = 0x4000;
    static constexpr uint64_t kData = 0x10000;  // first address handed out by alloc()

    explicit VirtqHarness(uint16_t size = 16, uint64_t mem_bytes = 4 << 20)
        : OwnedGuestMemory(mem_bytes), VirtqDriver(owned_mem, size, 0, kData) {}
};

}  // namespace ember::testing
