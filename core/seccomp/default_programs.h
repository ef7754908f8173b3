// ember's own filters (default_filters.json), compiled to BPF when ember was built
// (compile_default.cc): what ember installs unless told otherwise, with no JSON read and no
// libseccomp call at start.
#pragma once

#include <linux/filter.h>

#include <span>

#include "core/seccomp/filters.h"

namespace ember::seccomp {

ThreadFilters default_programs();

}  // namespace ember::seccomp
