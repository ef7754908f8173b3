// Work items run from a few threads at once, the first error stopping the rest: what ember-uffd
// uses to fetch, check and install a working set with every core, where one thread would leave the
// guest waiting on a single core's hashing and copying.
#pragma once

#include <cstddef>
#include <functional>

#include "core/base/error.h"

namespace ember {

// Threads for work that keeps a core busy (hashing, copying): one a core, at most `most`.
unsigned busy_threads(unsigned most = 8);

// Calls `each(i)` for every i below `count` from at most `threads` threads (this one among them),
// in no set order. Once an item fails no new one starts; the answer is the first failure.
Result<void> for_each_at_once(size_t count, unsigned threads,
                              const std::function<Result<void>(size_t)>& each);

}  // namespace ember
