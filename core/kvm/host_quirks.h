// Detected properties of the host's KVM that a guest must work around. The one known today: a host
// whose KVM emulates guest ring 0 in software (the kvm_pvm module) cannot run XSAVE, SMAP's
// CLAC/STAC, POPCNT or KVM hypercalls in guest ring 0, and busy-waits there are very slow.
// Hardware KVM never matches, so guests there keep every feature.
#pragma once

#include <string>
#include <string_view>

namespace ember {

struct HostQuirks {
    bool emulated_ring0 = false;
};

HostQuirks detect_host_quirks(const std::string& sysfs_module_dir = "/sys/module");

// Kernel arguments that make Linux boot on such a host: the features it cannot run, and small
// delay calibration and serial probing. Each is added only when the user's own arguments do not
// already set that key.
std::string quirk_boot_args(const HostQuirks& quirks, std::string_view user_args);

}  // namespace ember
