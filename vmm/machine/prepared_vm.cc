#include "vmm/machine/prepared_vm.h"

#include <sys/mman.h>

#include <algorithm>

#include "core/arch/x86_64/cpuid.h"
#include "core/arch/x86_64/layout.h"
#include "core/base/log.h"
#include "core/base/mapping.h"
#include "core/memory/guest_memory.h"

namespace ember {

Result<void> create_platform(const Vm& vm) {
    EMBER_TRY(vm.set_identity_map_address(x86::kIdentityMapAddr));
    EMBER_TRY(vm.set_tss_address(x86::kTssAddr));
    EMBER_TRY(vm.create_irqchip());
    return vm.create_pit2();
}

bool same_cpuid(std::span<const kvm_cpuid_entry2> a, std::span<const kvm_cpuid_entry2> b) {
    return std::ranges::equal(a, b, [](const kvm_cpuid_entry2& x, const kvm_cpuid_entry2& y) {
        return x.function == y.function && x.index == y.index && x.flags == y.flags &&
               x.eax == y.eax && x.ebx == y.ebx && x.ecx == y.ecx && x.edx == y.edx;
    });
}

Result<PreparedVm> prepare_vm(const std::string& kvm_path) {
    auto kvm = Kvm::open(kvm_path);
    EMBER_TRY(kvm);
    auto vm = kvm->create_vm();
    EMBER_TRY(vm);
    auto cpuid = kvm->supported_cpuid();
    EMBER_TRY(cpuid);
    return PreparedVm{std::move(*kvm), std::move(*vm), std::move(*cpuid), {}, {}};
}

namespace {

// A slot put in after the irqchip waits out the grace period the irqchip started (see
// prepared_vm.h), here, while the API is quiet, and not in the load. The memory made ahead's slot
// does; where there is none, a page's, put in and taken out again.
Result<void> wait_out_memory_slot_grace(const Vm& vm) {
    auto page = Mapping::map(kGuestPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    EMBER_TRY(page);
    EMBER_TRY(vm.set_user_memory_region(0, 0, kGuestPageSize, page->data()));
    return vm.set_user_memory_region(0, 0, 0, page->data());
}

Result<GuestMemory> make_ready_memory(const Vm& vm, uint64_t bytes) {
    const auto regions = x86::ram_regions(bytes);
    if (regions.size() != 1)
        return fail(std::to_string(bytes >> 20) + " MiB of guest memory is not one region");
    auto memory = GuestMemory::create_anonymous(regions);
    EMBER_TRY(memory, "guest memory made ahead");
    const GuestRegion& r = memory->regions().front();
    EMBER_TRY(vm.set_user_memory_region(0, r.guest_addr, r.size(), r.mapping.data()));
    return memory;
}

}  // namespace

Result<std::optional<GuestMemory>> take_ready_memory(PreparedVm& prepared,
                                                     std::span<const MemoryRegionSpec> regions,
                                                     uint64_t page_size, int memory_fd) {
    if (!prepared.memory) return std::nullopt;
    GuestMemory ready = std::move(*prepared.memory);
    prepared.memory.reset();
    const GuestRegion& r = ready.regions().front();
    if (page_size != ready.page_size() || regions.size() != 1 ||
        regions[0].guest_addr != r.guest_addr || regions[0].size != r.size()) {
        EMBER_TRY(prepared.vm.set_user_memory_region(0, r.guest_addr, 0, r.mapping.data()),
                  "taking out the guest memory made ahead");
        return std::nullopt;
    }
    // KVM's slot names addresses, not a mapping: the memory file's pages, mapped over the
    // anonymous ones the guest has never touched, are what it finds there.
    if (memory_fd >= 0 &&
        ::mmap(r.mapping.data(), r.size(), PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, memory_fd, 0) == MAP_FAILED) {
        auto failed = fail_errno("memory file: mmap over the guest memory made ahead");
        ready.abandon();
        return failed;
    }
    return ready;
}

Result<void> add_platform(PreparedVm& prepared, uint64_t memory_bytes) {
    EMBER_TRY(create_platform(prepared.vm));
    // Without it, the VM is still ready: its memory comes with its configuration, as for a VM of
    // another size.
    if (memory_bytes > 0) {
        auto memory = make_ready_memory(prepared.vm, memory_bytes);
        if (memory)
            prepared.memory = std::move(*memory);
        else
            log::info("no guest memory made ahead: " + memory.error().message);
    }
    if (!prepared.memory) EMBER_TRY(wait_out_memory_slot_grace(prepared.vm));
    // After the irqchip, so that it has its in-kernel local APIC.
    auto vcpu = prepared.vm.create_vcpu(0);
    EMBER_TRY(vcpu);
    auto cpuid = x86::guest_cpuid(prepared.supported_cpuid, 0, x86::CpuTopology{});
    EMBER_TRY(vcpu->set_cpuid(cpuid));
    auto tsc_khz = vcpu->get_tsc_khz();
    prepared.boot_vcpu = ReadyVcpu{std::move(*vcpu), std::move(cpuid),
                                   tsc_khz ? std::optional<uint32_t>(*tsc_khz) : std::nullopt};
    return {};
}

}  // namespace ember
