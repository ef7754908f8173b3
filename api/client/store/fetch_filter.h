// ember-store-fetch's seccomp filter, "fetcher" (fetch_filter.json, compiled in by CMake as ember's
// own are, with the sanitizers' rules in a sanitizer build): what its threads call once its store
// is open. The fetcher parses what a server sends, so it gets no more than a client of one needs:
// no exec, no file opened for writing, no other process signalled or traced.
#pragma once

#include "core/base/error.h"
#include "core/seccomp/filters.h"

namespace ember::client {

// The filter, compiled, with SIGSYS's reporter installed for the process, so that a call outside
// it is named and ends the fetcher with 148.
Result<seccomp::BpfProgram> fetch_filter();

}  // namespace ember::client
