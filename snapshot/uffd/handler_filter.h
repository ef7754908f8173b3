// ember-uffd's seccomp filter, "handler" (handler_filter.json, compiled in by CMake as ember's own
// are, with the sanitizers' rules in a sanitizer build): what its threads call once the VMM's
// handshake is in. ember-store-mount keeps to it too once it has mounted: the same work, on chunks,
// the cache and a fetcher, with /dev/fuse in place of a userfaultfd.
#pragma once

#include "core/base/error.h"
#include "core/seccomp/filters.h"

namespace ember::snapshot {

// The filter, compiled (before it is needed, where that costs nothing), with SIGSYS's reporter
// installed for the process, so that a call outside it is named and ends the program with 148.
Result<seccomp::BpfProgram> handler_filter();

}  // namespace ember::snapshot
