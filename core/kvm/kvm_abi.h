// The KVM structs that end in a flexible array, laid out as the C ABI has them. In C++ the uapi
// headers' __DECLARE_FLEX_ARRAY gives its empty struct one byte, so sizeof(kvm_cpuid2) is 12, not
// 8: the size encoded in the ioctl number is wrong (KVM answers EINVAL) and the array sits at the
// wrong offset. Every use of these ioctls goes through the headers and numbers below instead.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace ember::kvm_abi {

struct Cpuid2Header {
    uint32_t nent;
    uint32_t padding;
};  // followed by nent kvm_cpuid_entry2

struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t pad;
};  // followed by nmsrs kvm_msr_entry

struct MsrListHeader {
    uint32_t nmsrs;
};  // followed by nmsrs uint32_t

// kvm_xsave's fixed 4 KiB region (its trailing flexible array is empty for this ioctl).
struct Xsave {
    uint32_t region[1024];
};

static_assert(sizeof(Xsave) == 4096);
static_assert(sizeof(Cpuid2Header) == 8 && sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);

// KVM_PRE_FAULT_MEMORY (Linux 6.10), which Debian 12's uapi headers (6.1) do not have yet.
inline constexpr long kCapPreFaultMemory = 236;
struct PreFaultMemory {
    uint64_t gpa;
    uint64_t size;
    uint64_t flags;
    uint64_t padding[5];
};
static_assert(sizeof(PreFaultMemory) == 64);
inline constexpr unsigned long kPreFaultMemory = _IOWR(KVMIO, 0xd5, PreFaultMemory);

// KVM_EXIT_MEMORY_FAULT (Linux 6.8), with KVM_RUN's EFAULT: kvm_run's exit union then holds the
// guest range KVM could not map.
inline constexpr uint32_t kExitMemoryFault = 39;
struct MemoryFault {
    uint64_t flags;
    uint64_t gpa;
    uint64_t size;
};
static_assert(sizeof(MemoryFault) <= sizeof(kvm_run{}.padding));

}  // namespace ember::kvm_abi
