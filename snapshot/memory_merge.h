// Diff snapshots onto their base: a Diff memory file is sparse, its data extents the pages that
// changed since the snapshot it follows and its holes the pages that did not. Merging copies the
// data extents onto the base memory file, so the base can be loaded with the Diff's state file.
#pragma once

#include <cstdint>

#include "core/base/error.h"

namespace ember::snapshot {

// Copies every data extent of `diff` onto the same offsets of `base` and fsyncs it. Both files
// must be the same size (one VM's memory); the number of bytes copied on success.
Result<uint64_t> merge_diff(int base, int diff);

}  // namespace ember::snapshot
