// ember-cpu: a fleet's CPU template from its hosts, in Firecracker's custom template language
// (PUT /cpu-config, the config file's cpu-config).
//   ember-cpu dump               this host's guest CPU as a template, every bit given
//   ember-cpu intersect DUMP...  one template every host of the dumps can boot a guest under
//   ember-cpu verify TEMPLATE    whether this host can; exit 3 when it cannot
// Whether a snapshot's state file can load here: ember-snapshot-info --check-host.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "api/json/cpu_config_json.h"
#include "core/base/hex.h"
#include "core/base/open_file.h"
#include "core/kvm/kvm.h"
#include "vmm/machine/fleet_template.h"
#include "vmm/machine/templated_cpu.h"

using namespace ember;

namespace {

constexpr int kDoesNotFit = 3;
constexpr const char* kUsage =
    "usage: ember-cpu dump\n"
    "       ember-cpu intersect DUMP...\n"
    "       ember-cpu verify TEMPLATE\n";

Result<CpuTemplate> template_at(const std::string& path) {
    // A template is a few tens of KiB; this bounds what a mistaken path (a disk image) costs.
    auto text = read_small_file(path, 1 << 20);
    EMBER_TRY(text);
    auto t = json::parse_cpu_config(*text);
    EMBER_TRY(t, path);
    return t;
}

struct Host {
    Kvm kvm;
    std::vector<kvm_cpuid_entry2> cpuid;
    std::vector<uint32_t> msrs;
};

Result<Host> this_host() {
    auto kvm = Kvm::open();
    EMBER_TRY(kvm);
    auto cpuid = kvm->supported_cpuid();
    EMBER_TRY(cpuid);
    auto msrs = kvm->msr_index_list();
    EMBER_TRY(msrs);
    return Host{std::move(*kvm), std::move(*cpuid), std::move(*msrs)};
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out.append(out.empty() ? "" : ", ").append(i);
    return out;
}

// A template on stdout, which must have taken it whole: a host agent redirects it to a file.
Result<int> write_out(const CpuTemplate& t) {
    std::printf("%s\n", json::to_json(t).c_str());
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) return fail_errno("stdout");
    return 0;
}

Result<int> dump() {
    auto host = this_host();
    EMBER_TRY(host);
    return write_out(dump_of(host->cpuid));
}

Result<int> intersect(const std::vector<std::string>& paths) {
    std::vector<CpuTemplate> dumps;
    for (const auto& p : paths) {
        auto t = template_at(p);
        EMBER_TRY(t);
        dumps.push_back(std::move(*t));
    }
    auto fleet = fleet_template(dumps);
    EMBER_TRY(fleet);
    return write_out(*fleet);
}

Result<int> verify(const std::string& path) {
    auto t = template_at(path);
    EMBER_TRY(t);
    auto host = this_host();
    EMBER_TRY(host);
    const std::string here = x86::cpu_vendor(host->cpuid);
    auto refused = [&](const std::string& why) {
        std::printf("this host (%s): cannot boot a guest under %s: %s\n", here.c_str(),
                    path.c_str(), why.c_str());
        return kDoesNotFit;
    };
    if (auto r = check_kvm_capabilities(host->kvm, *t); !r) return refused(r.error().message);
    auto s = shortfall_under(*t, host->cpuid, host->msrs);
    if (!s) return refused(s.error().message);
    std::vector<std::string> parts;
    if (!s->features.empty())
        parts.push_back("it gives " + joined(s->features) + ", which this host lacks");
    if (!s->xsave.empty())
        parts.push_back("it lets the guest enable the XSAVE state " + joined(s->xsave) +
                        ", which this host's KVM cannot save");
    if (!s->msrs.empty()) {
        std::vector<std::string> msrs;
        for (uint32_t m : s->msrs) msrs.push_back(hex32(m));
        parts.push_back("it sets the MSRs " + joined(msrs) +
                        ", which this host's KVM does not save (KVM_GET_MSR_INDEX_LIST)");
    }
    if (!parts.empty()) {
        std::string why = parts.front();
        for (size_t i = 1; i < parts.size(); ++i) why.append("; ").append(parts[i]);
        return refused(why);
    }
    std::printf("this host (%s): a guest under %s fits\n", here.c_str(), path.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    Result<int> r = 2;
    if (args.size() == 1 && args[0] == "dump")
        r = dump();
    else if (args.size() >= 2 && args[0] == "intersect")
        r = intersect({args.begin() + 1, args.end()});
    else if (args.size() == 2 && args[0] == "verify")
        r = verify(args[1]);
    else
        std::fputs(kUsage, stderr);
    if (!r) {
        std::fprintf(stderr, "ember-cpu: %s\n", r.error().message.c_str());
        return 1;
    }
    return *r;
}
