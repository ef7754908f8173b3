// The Vmm's guest loading for a fresh boot: the kernel, the initrd, the command line and the
// tables the kernel reads (zero page or PVH start info, e820, ACPI and MP tables, boot GDT and page
// tables). Both ACPI and the MP table with command-line devices are there: a kernel built without
// ACPI (ember's own) uses the latter, a distribution's kernel the former.
#include "core/arch/x86_64/acpi.h"
#include "core/arch/x86_64/boot_params.h"
#include "core/arch/x86_64/cpuid.h"
#include "core/arch/x86_64/e820.h"
#include "core/arch/x86_64/layout.h"
#include "core/arch/x86_64/mptable.h"
#include "core/arch/x86_64/regs.h"
#include "core/base/hex.h"
#include "core/base/log.h"
#include "core/devices/i8042.h"
#include "core/devices/serial.h"
#include "vmm/machine/generation_id.h"
#include "vmm/machine/vmm.h"

namespace ember {

Result<void> Vmm::load_guest(const VmConfig& config) {
    const auto& boot = *config.boot_source;
    const uint64_t top = memory_.regions().back().end();
    const uint32_t phys_bits = x86::physical_address_bits(cpuid_);
    if (phys_bits < 64 && top > (uint64_t{1} << phys_bits))
        return fail("machine-config.mem_size_mib: " + std::to_string(config.machine.mem_size_mib) +
                    " MiB ends at " + hex(top) + ", beyond this CPU's " +
                    std::to_string(phys_bits) + "-bit physical address space");

    auto kernel = x86::load_kernel(memory_, boot.kernel_image_path);
    EMBER_TRY(kernel, "boot-source");
    kernel_ = std::move(*kernel);

    std::optional<x86::InitrdPlacement> initrd;
    if (boot.initrd_path) {
        auto placed = x86::load_initrd(memory_, kernel_, *boot.initrd_path);
        EMBER_TRY(placed, "boot-source");
        initrd = *placed;
    }

    std::string cmdline =
        boot.boot_args.value_or(kDefaultBootArgs) + virtio_boot_args(config, virtio_plan_);
    std::string quirk_args = quirk_boot_args(options_.quirks, cmdline);
    if (!quirk_args.empty()) {
        log::info("host KVM emulates guest ring 0 (kvm_pvm): added kernel arguments '" +
                  quirk_args + "'");
        cmdline += " " + quirk_args;
    }
    auto cmdline_size = x86::write_cmdline(memory_, cmdline, kernel_.cmdline_max);
    EMBER_TRY(cmdline_size, "boot-source.boot_args");

    x86::AcpiMachine machine{
        config.machine.vcpu_count,
        {static_cast<uint16_t>(kCom1Base), static_cast<uint8_t>(kCom1Gsi)},
        {static_cast<uint16_t>(kI8042Base), static_cast<uint8_t>(kKeyboardGsi)},
        {}};
    for (const auto& slot : virtio_plan_)
        machine.virtio.push_back({slot.base, x86::kMmioSlotSize, slot.gsi});
    auto rsdp = x86::write_acpi_tables(memory_, machine);
    EMBER_TRY(rsdp);
    EMBER_TRY(write_new_generation_id(memory_, x86::kVmGenIdAddr));
    generation_id_ = snapshot::GenerationIdPlace{x86::kVmGenIdAddr, x86::kGedGsi};

    auto e820 = x86::e820_map(memory_.regions());
    x86::BootInfo info{e820, *cmdline_size, initrd, *rsdp};
    if (kernel_.protocol == x86::BootProtocol::Pvh) {
        EMBER_TRY(x86::write_pvh_start_info(memory_, info));
    } else if (auto r = x86::write_zero_page(memory_, kernel_, info); !r) {
        return r;
    }
    EMBER_TRY(x86::write_mptable(memory_, config.machine.vcpu_count));
    log::info("boot: ACPI tables (RSDP at " + hex(*rsdp) +
              ", VMGenID, power off through S5) for kernels with ACPI; an MP table and "
              "virtio_mmio.device= arguments for kernels without");
    return x86::write_cpu_boot_tables(memory_, kernel_.protocol);
}

}  // namespace ember
