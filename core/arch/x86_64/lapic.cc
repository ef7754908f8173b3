#include "core/arch/x86_64/lapic.h"

#include <cstring>

namespace ember::x86 {
namespace {

constexpr size_t kLvtLint0 = 0x350;
constexpr size_t kLvtLint1 = 0x360;
constexpr uint32_t kDeliveryModeMask = 0x700;
constexpr uint32_t kDeliveryExtInt = 0x700;
constexpr uint32_t kDeliveryNmi = 0x400;

uint32_t get_reg(const kvm_lapic_state& l, size_t offset) {
    uint32_t v;
    std::memcpy(&v, l.regs + offset, sizeof v);
    return v;
}
void set_reg(kvm_lapic_state& l, size_t offset, uint32_t v) {
    std::memcpy(l.regs + offset, &v, sizeof v);
}

}  // namespace

void set_lint_delivery_modes(kvm_lapic_state& lapic) {
    set_reg(lapic, kLvtLint0, (get_reg(lapic, kLvtLint0) & ~kDeliveryModeMask) | kDeliveryExtInt);
    set_reg(lapic, kLvtLint1, (get_reg(lapic, kLvtLint1) & ~kDeliveryModeMask) | kDeliveryNmi);
}

Result<void> setup_lapic(const Vcpu& vcpu) {
    auto lapic = vcpu.get_lapic();
    EMBER_TRY(lapic);
    set_lint_delivery_modes(*lapic);
    return vcpu.set_lapic(*lapic);
}

}  // namespace ember::x86
