// What a paused VM is made of, as the state file holds it: each vCPU's state
// (core/kvm/vcpu_state.h, which keeps KVM's order for putting it back), the VM's PIC, IOAPIC, PIT
// and clock (core/kvm/vm_state.h), the memory's layout, and the devices' own sections. Captured
// with every vCPU stopped (the pause protocol completes any pending PIO/MMIO first).
#pragma once

#include <linux/kvm.h>

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/base/state_codec.h"
#include "core/config/vm_config.h"
#include "core/kvm/kvm_abi.h"
#include "core/kvm/vcpu_state.h"
#include "core/kvm/vm_state.h"
#include "core/memory/guest_memory.h"
#include "snapshot/devices.h"
#include "snapshot/format.h"

namespace ember::snapshot {

// The machine-wide sections' ids (core/base/state_sections.h).
inline constexpr uint32_t kConfig = state_sections::kConfig.id, kVmKvm = state_sections::kVmKvm.id,
                          kVcpu = state_sections::kVcpu.id, kMemory = state_sections::kMemory.id;

// The memory file's layout: guest regions back to back from offset 0. Version 2 adds where the
// guest was told (through ACPI) its generation ID lives and which interrupt announces a new one; a
// version 1 section, from before ember wrote ACPI tables, has none. Version 3 adds the size of the
// pages guest memory was mapped with (machine-config.huge_pages); before it, 4 KiB.
inline constexpr uint32_t kMemoryLayoutVersion = state_sections::kMemory.version;
struct GenerationIdPlace {
    uint64_t addr;
    uint32_t gsi;
};
struct MemoryLayout {
    std::vector<MemoryRegionSpec> regions;
    std::optional<GenerationIdPlace> generation_id;
    uint64_t page_size = kGuestPageSize;
    uint64_t total() const;
};
void describe_state(Is<GenerationIdPlace> auto& g, auto&& v) {
    leaves(v, g.addr, g.gsi);
}
void describe_state(Is<MemoryLayout> auto& m, auto&& v) {
    v(StateField{.name = "regions", .max = 8}, m.regions);
    v(StateField{.name = "generation_id", .since = 2}, m.generation_id);
    v(StateField{.name = "page_size", .since = 3}, m.page_size);
}

// What the Vmm hands write_snapshot() (write_snapshot.h): read_snapshot() gives the same back,
// the devices' sections aside, which stay in the file until the rebuilt devices take them.
struct MachineState {
    VmConfig config;  // with its CPU template, which has a section of its own
    MemoryLayout layout;
    VmKvmState vm;
    std::vector<VcpuState> vcpus;
    std::vector<TaggedDevice> devices;  // quiesced, in the order their sections are written
};

// Version 2 adds the nested virtualization state; a vCPU without one is written as version 1.
inline constexpr uint32_t kVcpuVersion = state_sections::kVcpu.version;
uint32_t vcpu_section_version(const VcpuState& s);
// At vcpu_section_version(s).
std::vector<uint8_t> encode(const VcpuState& s);
Result<VcpuState> decode_vcpu(std::span<const uint8_t> payload, uint32_t version);
std::vector<uint8_t> encode(const VmKvmState& s);
Result<VmKvmState> decode_vm(std::span<const uint8_t> payload);
std::vector<uint8_t> encode(const MemoryLayout& m);
Result<MemoryLayout> decode_memory(std::span<const uint8_t> payload, uint32_t version);

}  // namespace ember::snapshot
