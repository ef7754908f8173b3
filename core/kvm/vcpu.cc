#include "core/kvm/vcpu.h"

#include <sys/ioctl.h>

#include <cstring>

#include <string>
#include "core/base/hex.h"
#include "core/kvm/kvm_abi.h"

namespace ember {
namespace {

template <typename T>
Result<T> get(int fd, unsigned long request, const char* name) {
    T value{};
    if (::ioctl(fd, request, &value) < 0) return fail_errno(name);
    return value;
}

template <typename T>
Result<void> set(int fd, unsigned long request, const T& value, const char* name) {
    if (::ioctl(fd, request, &value) < 0) return fail_errno(name);
    return {};
}

// A kvm_msrs argument: the header, then the entries.
std::vector<uint8_t> msrs_buffer(std::span<const kvm_msr_entry> entries) {
    std::vector<uint8_t> buf(sizeof(kvm_abi::MsrsHeader) + entries.size_bytes());
    reinterpret_cast<kvm_abi::MsrsHeader*>(buf.data())->nmsrs =
        static_cast<uint32_t>(entries.size());
    // An empty span's data may be null, which memcpy must not be given.
    if (!entries.empty())
        std::memcpy(buf.data() + sizeof(kvm_abi::MsrsHeader), entries.data(), entries.size_bytes());
    return buf;
}

}  // namespace

int Vcpu::run() const {
    return ::ioctl(fd_.get(), KVM_RUN, 0) < 0 ? -errno : 0;
}

Result<kvm_regs> Vcpu::get_regs() const {
    return get<kvm_regs>(fd(), KVM_GET_REGS, "KVM_GET_REGS");
}
Result<void> Vcpu::set_regs(const kvm_regs& r) const {
    return set(fd(), KVM_SET_REGS, r, "KVM_SET_REGS");
}
Result<kvm_sregs> Vcpu::get_sregs() const {
    return get<kvm_sregs>(fd(), KVM_GET_SREGS, "KVM_GET_SREGS");
}
Result<void> Vcpu::set_sregs(const kvm_sregs& s) const {
    return set(fd(), KVM_SET_SREGS, s, "KVM_SET_SREGS");
}
Result<kvm_fpu> Vcpu::get_fpu() const {
    return get<kvm_fpu>(fd(), KVM_GET_FPU, "KVM_GET_FPU");
}
Result<void> Vcpu::set_fpu(const kvm_fpu& f) const {
    return set(fd(), KVM_SET_FPU, f, "KVM_SET_FPU");
}
Result<kvm_lapic_state> Vcpu::get_lapic() const {
    return get<kvm_lapic_state>(fd(), KVM_GET_LAPIC, "KVM_GET_LAPIC");
}
Result<void> Vcpu::set_lapic(const kvm_lapic_state& l) const {
    return set(fd(), KVM_SET_LAPIC, l, "KVM_SET_LAPIC");
}
Result<kvm_vcpu_events> Vcpu::get_vcpu_events() const {
    return get<kvm_vcpu_events>(fd(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}
Result<void> Vcpu::set_vcpu_events(const kvm_vcpu_events& e) const {
    return set(fd(), KVM_SET_VCPU_EVENTS, e, "KVM_SET_VCPU_EVENTS");
}
Result<kvm_mp_state> Vcpu::get_mp_state() const {
    return get<kvm_mp_state>(fd(), KVM_GET_MP_STATE, "KVM_GET_MP_STATE");
}

Result<void> Vcpu::set_mp_state(const kvm_mp_state& m) const {
    return set(fd(), KVM_SET_MP_STATE, m, "KVM_SET_MP_STATE");
}
Result<kvm_abi::Xsave> Vcpu::get_xsave() const {
    return get<kvm_abi::Xsave>(fd(), kvm_abi::kGetXsave, "KVM_GET_XSAVE");
}
Result<void> Vcpu::set_xsave(const kvm_abi::Xsave& x) const {
    return set(fd(), kvm_abi::kSetXsave, x, "KVM_SET_XSAVE");
}
Result<kvm_xcrs> Vcpu::get_xcrs() const {
    return get<kvm_xcrs>(fd(), KVM_GET_XCRS, "KVM_GET_XCRS");
}
Result<void> Vcpu::set_xcrs(const kvm_xcrs& x) const {
    return set(fd(), KVM_SET_XCRS, x, "KVM_SET_XCRS");
}
Result<kvm_debugregs> Vcpu::get_debugregs() const {
    return get<kvm_debugregs>(fd(), KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");
}
Result<void> Vcpu::set_debugregs(const kvm_debugregs& d) const {
    return set(fd(), KVM_SET_DEBUGREGS, d, "KVM_SET_DEBUGREGS");
}
Result<void> Vcpu::pre_fault_memory(uint64_t gpa, uint64_t size) const {
    kvm_abi::PreFaultMemory range{};
    range.gpa = gpa;
    range.size = size;
    // KVM advances gpa and size as it goes. It returns early with EINTR for a pending signal and
    // with EAGAIN when it raced a memory slot change, each before any progress: retried, a bounded
    // number of times in a row.
    int retries = 0;
    while (range.size > 0) {
        if (::ioctl(fd(), kvm_abi::kPreFaultMemory, &range) == 0) {
            retries = 0;
            continue;
        }
        const int err = errno;
        if ((err != EINTR && err != EAGAIN) || ++retries > 100) {
            auto e = fail_errno("KVM_PRE_FAULT_MEMORY at guest address " + hex(range.gpa), err);
            // This KVM cannot at all (no TDP, or a request it does not take), as against a range
            // it could not map.
            if (err == EOPNOTSUPP || err == EINVAL) e.error().kind = ErrorKind::Unavailable;
            return e;
        }
    }
    return {};
}

Result<std::vector<uint8_t>> Vcpu::get_nested_state(size_t max_size) const {
    if (max_size < sizeof(kvm_nested_state)) return fail("KVM_GET_NESTED_STATE: no room");
    // kvm_nested_state's alignment, for the header KVM reads and writes in place.
    std::vector<uint64_t> buf((max_size + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    auto* state = reinterpret_cast<kvm_nested_state*>(buf.data());
    state->size = static_cast<uint32_t>(max_size);
    if (::ioctl(fd(), KVM_GET_NESTED_STATE, state) < 0) return fail_errno("KVM_GET_NESTED_STATE");
    if (state->size < sizeof(kvm_nested_state) || state->size > max_size)
        return fail("KVM_GET_NESTED_STATE: " + std::to_string(state->size) + " bytes");
    const auto* bytes = reinterpret_cast<const uint8_t*>(buf.data());
    return std::vector<uint8_t>(bytes, bytes + state->size);
}

Result<void> Vcpu::set_nested_state(std::span<const uint8_t> state) const {
    kvm_nested_state header{};
    if (state.size() >= sizeof header) std::memcpy(&header, state.data(), sizeof header);
    // KVM reads as many bytes as the header says: no more than are here.
    if (state.size() < sizeof header || header.size != state.size())
        return fail("KVM_SET_NESTED_STATE: " + std::to_string(state.size()) +
                    " bytes, not a whole state");
    std::vector<uint64_t> buf((state.size() + sizeof(uint64_t) - 1) / sizeof(uint64_t));
    std::memcpy(buf.data(), state.data(), state.size());
    if (::ioctl(fd(), KVM_SET_NESTED_STATE, buf.data()) < 0)
        return fail_errno("KVM_SET_NESTED_STATE");
    return {};
}

Result<uint32_t> Vcpu::get_tsc_khz() const {
    int khz = ::ioctl(fd(), KVM_GET_TSC_KHZ, 0);
    if (khz < 0) return fail_errno("KVM_GET_TSC_KHZ");
    return static_cast<uint32_t>(khz);
}
Result<void> Vcpu::set_tsc_khz(uint32_t khz) const {
    if (::ioctl(fd(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0)
        return fail_errno("KVM_SET_TSC_KHZ");
    return {};
}

Result<void> Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) const {
    std::vector<uint8_t> buf(sizeof(kvm_abi::Cpuid2Header) + entries.size_bytes());
    reinterpret_cast<kvm_abi::Cpuid2Header*>(buf.data())->nent =
        static_cast<uint32_t>(entries.size());
    if (!entries.empty())
        std::memcpy(buf.data() + sizeof(kvm_abi::Cpuid2Header), entries.data(),
                    entries.size_bytes());
    if (::ioctl(fd(), kvm_abi::kSetCpuid2, buf.data()) < 0) return fail_errno("KVM_SET_CPUID2");
    return {};
}

Result<void> Vcpu::set_msrs(std::span<const kvm_msr_entry> entries) const {
    auto buf = msrs_buffer(entries);
    int n = ::ioctl(fd(), kvm_abi::kSetMsrs, buf.data());
    if (n < 0) return fail_errno("KVM_SET_MSRS");
    // KVM stops at the first MSR it rejects and returns how many it set.
    if (static_cast<size_t>(n) != entries.size())
        return fail("KVM_SET_MSRS: KVM rejected MSR " + hex(entries[static_cast<size_t>(n)].index));
    return {};
}

Result<std::vector<kvm_msr_entry>> Vcpu::get_msrs(std::span<const uint32_t> indices) const {
    std::vector<kvm_msr_entry> entries(indices.size());
    for (size_t i = 0; i < indices.size(); ++i) entries[i].index = indices[i];
    auto buf = msrs_buffer(entries);
    int n = ::ioctl(fd(), kvm_abi::kGetMsrs, buf.data());
    if (n < 0) return fail_errno("KVM_GET_MSRS");
    entries.resize(static_cast<size_t>(n));
    std::memcpy(entries.data(), buf.data() + sizeof(kvm_abi::MsrsHeader),
                entries.size() * sizeof(kvm_msr_entry));
    return entries;
}

}  // namespace ember
