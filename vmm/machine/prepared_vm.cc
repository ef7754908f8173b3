#include "vmm/machine/prepared_vm.h"

#include <sys/mman.h>

#include <algorithm>

#include "core/arch/x86_64/cpuid.h"
#include "core/arch/x86_64/layout.h"
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
    return PreparedVm{std::move(*kvm), std::move(*vm), std::move(*cpuid), {}};
}

namespace {

// A page put in as a memory slot and taken out again: the grace period the irqchip started (see
// prepared_vm.h) is waited out here, while the API is quiet, and not by the load's memory.
Result<void> wait_out_memory_slot_grace(const Vm& vm) {
    auto page = Mapping::map(kGuestPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    EMBER_TRY(page);
    EMBER_TRY(vm.set_user_memory_region(0, 0, kGuestPageSize, page->data()));
    return vm.set_user_memory_region(0, 0, 0, page->data());
}

}  // namespace

Result<void> add_platform(PreparedVm& prepared) {
    EMBER_TRY(create_platform(prepared.vm));
    EMBER_TRY(wait_out_memory_slot_grace(prepared.vm));
    // After the irqchip, so that it has its in-kernel local APIC.
    auto vcpu = prepared.vm.create_vcpu(0);
    EMBER_TRY(vcpu);
    auto cpuid = x86::guest_cpuid(prepared.supported_cpuid, 0, x86::CpuTopology{});
    EMBER_TRY(vcpu->set_cpuid(cpuid));
    prepared.boot_vcpu = ReadyVcpu{std::move(*vcpu), std::move(cpuid)};
    return {};
}

}  // namespace ember
