// Firecracker's metric groups for the devices and vCPUs a VM has, under Firecracker's names, so
// that dashboards built for Firecracker read ember's metrics file.
#pragma once

#include <vector>

#include "core/base/metrics.h"
#include "vmm/machine/vmm.h"

namespace ember {

// "vcpu", "uart", "i8042"; "block" (every drive added up) and "block_<drive_id>"; "net" and
// "net_<iface_id>". Only fields ember counts are named: metrics::with_firecracker_groups() adds the
// rest.
std::vector<metrics::Group> vm_metrics(const Vmm& vmm);

}  // namespace ember
