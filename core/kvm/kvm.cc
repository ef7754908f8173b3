#include "core/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include "core/base/file_io.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/kvm/kvm_abi.h"
#include "core/kvm/vm.h"

namespace ember {
namespace {

constexpr KvmCapability kRequired[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_HLT, "KVM_CAP_HLT"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
};

}  // namespace

std::span<const KvmCapability> required_kvm_capabilities() {
    return kRequired;
}

Result<Kvm> Kvm::open(const std::string& path) {
    int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (raw < 0) {
        int err = errno;
        if (err == ENOENT)
            return fail(path +
                        " does not exist: KVM is not available on this host (load kvm_intel "
                        "or kvm_amd, or enable nested virtualisation)");
        return fail_errno("cannot open " + path, err);
    }
    UniqueFd fd(raw);
    int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return fail(path + ": KVM API version " + std::to_string(version) + ", ember needs " +
                    std::to_string(KVM_API_VERSION));
    for (const auto& cap : kRequired) {
        if (::ioctl(fd.get(), KVM_CHECK_EXTENSION, cap.id) <= 0)
            return fail(path + ": the host's KVM lacks " + std::string(cap.name) +
                        ", which ember needs");
    }
    int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < static_cast<int>(sizeof(kvm_run)))
        return fail_errno(path + ": KVM_GET_VCPU_MMAP_SIZE");
    const int nested = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
    const bool payload = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_EXCEPTION_PAYLOAD) > 0;
    return Kvm(std::move(fd), static_cast<size_t>(mmap_size),
               nested > 0 ? static_cast<size_t>(nested) : 0, payload);
}

int Kvm::check_extension(long capability) const {
    return ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::supported_cpuid() const {
    // KVM says E2BIG until the buffer is large enough; grow until it fits.
    // KVM caps the answer at KVM_MAX_CPUID_ENTRIES (256): ask for that many at once.
    constexpr uint32_t kMaxEntries = 256;
    std::vector<uint8_t> buf(sizeof(kvm_abi::Cpuid2Header) +
                             kMaxEntries * sizeof(kvm_cpuid_entry2));
    auto* header = reinterpret_cast<kvm_abi::Cpuid2Header*>(buf.data());
    header->nent = kMaxEntries;
    if (::ioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, buf.data()) < 0)
        return fail_errno("KVM_GET_SUPPORTED_CPUID");
    std::vector<kvm_cpuid_entry2> entries(std::min(header->nent, kMaxEntries));
    std::memcpy(entries.data(), buf.data() + sizeof *header,
                entries.size() * sizeof(kvm_cpuid_entry2));
    return entries;
}

Result<std::vector<uint32_t>> Kvm::msr_index_list() const {
    // A first call with room for none says how many there are.
    kvm_abi::MsrListHeader probe{};
    if (::ioctl(fd_.get(), kvm_abi::kGetMsrIndexList, &probe) < 0 && errno != E2BIG)
        return fail_errno("KVM_GET_MSR_INDEX_LIST");
    std::vector<uint8_t> buf(sizeof probe + probe.nmsrs * sizeof(uint32_t));
    auto* header = reinterpret_cast<kvm_abi::MsrListHeader*>(buf.data());
    header->nmsrs = probe.nmsrs;
    if (::ioctl(fd_.get(), kvm_abi::kGetMsrIndexList, buf.data()) < 0)
        return fail_errno("KVM_GET_MSR_INDEX_LIST");
    std::vector<uint32_t> indices(std::min(header->nmsrs, probe.nmsrs));
    std::memcpy(indices.data(), buf.data() + sizeof probe, indices.size() * sizeof(uint32_t));
    return indices;
}

Result<Vm> Kvm::create_vm() const {
    // EINTR is possible while the kernel allocates the VM; retrying is what the ioctl expects.
    const int raw = retry_on_eintr([&] { return ::ioctl(fd_.get(), KVM_CREATE_VM, 0); });
    if (raw < 0) return fail_errno("KVM_CREATE_VM");
    Vm vm(UniqueFd(raw), vcpu_mmap_size_);
    // An exception pending at a snapshot is then saved as pending, with its payload (a #PF's CR2,
    // a #DB's DR6), where KVM would otherwise write the payload into the guest's registers first
    // and save it as delivered. A nested guest's exception that L1 intercepts stays L1's to take
    // after a restore. QEMU enables it for the same reason.
    if (exception_payload_) EMBER_TRY(vm.enable_cap(KVM_CAP_EXCEPTION_PAYLOAD, 1));
    return vm;
}

}  // namespace ember
