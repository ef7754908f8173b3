#include "core/kvm/host_quirks.h"

#include <unistd.h>

#include <sstream>

namespace ember {
namespace {

constexpr const char* kEmulatedRing0Args[] = {
    "noxsave",         "clearcpuid=308,295,514,151", "nopv", "lpj=100000", "tsc=reliable",
    "8250.nr_uarts=1",
};

bool has_key(std::string_view args, std::string_view arg) {
    std::string_view key = arg.substr(0, arg.find('='));
    std::istringstream words{std::string(args)};
    std::string word;
    while (words >> word) {
        if (std::string_view(word).substr(0, word.find('=')) == key) return true;
    }
    return false;
}

}  // namespace

HostQuirks detect_host_quirks(const std::string& sysfs_module_dir) {
    HostQuirks q;
    q.emulated_ring0 = ::access((sysfs_module_dir + "/kvm_pvm").c_str(), F_OK) == 0;
    return q;
}

std::string quirk_boot_args(const HostQuirks& quirks, std::string_view user_args) {
    std::string out;
    if (!quirks.emulated_ring0) return out;
    for (const char* arg : kEmulatedRing0Args) {
        if (has_key(user_args, arg)) continue;
        if (!out.empty()) out += ' ';
        out += arg;
    }
    return out;
}

}  // namespace ember
