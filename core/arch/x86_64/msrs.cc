#include "core/arch/x86_64/msrs.h"

namespace ember::x86 {
namespace {

constexpr uint32_t kMsrIa32SysenterCs = 0x174;
constexpr uint32_t kMsrIa32SysenterEsp = 0x175;
constexpr uint32_t kMsrIa32SysenterEip = 0x176;
constexpr uint32_t kMsrStar = 0xc0000081;
constexpr uint32_t kMsrLstar = 0xc0000082;
constexpr uint32_t kMsrCstar = 0xc0000083;
constexpr uint32_t kMsrSyscallMask = 0xc0000084;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrIa32Tsc = 0x10;
constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
constexpr uint32_t kMsrMtrrDefType = 0x2ff;

constexpr uint64_t kMiscEnableFastString = 1;
constexpr uint64_t kMtrrEnable = 1 << 11;
constexpr uint64_t kMemTypeWriteBack = 6;

kvm_msr_entry msr(uint32_t index, uint64_t value) {
    kvm_msr_entry e{};
    e.index = index;
    e.data = value;
    return e;
}

}  // namespace

std::vector<kvm_msr_entry> boot_msrs() {
    return {
        msr(kMsrIa32SysenterCs, 0),
        msr(kMsrIa32SysenterEsp, 0),
        msr(kMsrIa32SysenterEip, 0),
        msr(kMsrStar, 0),
        msr(kMsrCstar, 0),
        msr(kMsrKernelGsBase, 0),
        msr(kMsrSyscallMask, 0),
        msr(kMsrLstar, 0),
        msr(kMsrIa32Tsc, 0),
        msr(kMsrIa32MiscEnable, kMiscEnableFastString),
        msr(kMsrMtrrDefType, kMtrrEnable | kMemTypeWriteBack),
    };
}

}  // namespace ember::x86
