// ember-uffd's seccomp filter, "handler" (handler_filter.json, compiled in by CMake as ember's own
// are, with the sanitizers' rules in a sanitizer build): what its threads call once the VMM's
// handshake is in. ember-store-mount keeps to it too once it has mounted: the same work, on chunks,
// the cache and a fetcher, with /dev/fuse in place of a userfaultfd.
#pragma once

#include <string_view>

namespace ember::snapshot {

std::string_view handler_filter_json();

}  // namespace ember::snapshot
