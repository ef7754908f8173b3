// A fleet's CPU template from its hosts (ember-cpu): each host's guest CPU dumped as a template,
// the dumps intersected into one template that every one of those hosts can boot a guest under,
// and whether this host can. A snapshot of a guest booted under that template then loads on any
// of them (as far as CPUID and XSAVE go: which MSRs a snapshot saves is each host's KVM's).
#pragma once

#include <linux/kvm.h>

#include <span>
#include <vector>

#include "core/arch/x86_64/cpu_fit.h"
#include "core/base/error.h"
#include "core/config/cpu_template.h"

namespace ember {

// KVM's supported CPUID (what a template edits, before ember's topology leaves) as a template:
// every register of every (leaf, subleaf) given in full.
CpuTemplate dump_of(std::span<const kvm_cpuid_entry2> supported);

// One template every host whose dump is in `dumps` can boot a guest under, each guest then given
// the same features. A feature bit (x86::feature_bits(), XSAVE components) is kept where every
// dump has it and cleared everywhere else, even where none has it, so that a newer host that joins
// the fleet later gives no more. The highest basic and extended leaves become the lowest of the
// dumps'. What is not a feature (family, model, caches, topology, the brand) stays each host's own,
// and a (leaf, subleaf) missing from one dump is left out. A template that keeps any bit is not a
// dump, and is refused.
Result<CpuTemplate> fleet_template(std::span<const CpuTemplate> dumps);

// What a guest booted here under `t` would be given that this host's KVM does not offer: the
// feature bits and XSAVE components the template sets over `supported`, and its MSRs missing from
// `host_msrs` (which a snapshot would not save). An error when the template cannot apply at all.
Result<x86::CpuShortfall> shortfall_under(const CpuTemplate& t,
                                          std::span<const kvm_cpuid_entry2> supported,
                                          std::span<const uint32_t> host_msrs);

}  // namespace ember
