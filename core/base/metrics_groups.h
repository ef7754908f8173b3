// Firecracker 1.7's metrics line, group by group and field by field (its logger/metrics.rs, the
// devices' metrics.rs, and tests/host_tools/fcmetrics.py, which its dashboards and validator
// follow): a line lacking any of them is rejected there. ember fills in what it does not count,
// devices it does not have (balloon, vsock, mmds, entropy) included, with zeros.
#pragma once

#include <vector>

#include "core/base/metrics.h"

namespace ember::metrics {

// `groups` in Firecracker's order, each with every one of Firecracker's fields (a field missing
// from it shows 0). The per-device groups "block_<id>" and "net_<id>" get the fields of "block" and
// "net" and follow their aggregate; a group or field Firecracker lacks is kept, after the rest.
// Firecracker's latency aggregates (*_agg objects) are left out: its validator does not ask for
// them and ember does not measure them.
std::vector<Group> with_firecracker_groups(std::vector<Group> groups);

}  // namespace ember::metrics
