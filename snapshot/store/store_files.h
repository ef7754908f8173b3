// The files a store and a chunk cache are made of: folders made where missing, and a file written
// under a temporary name beside its own and renamed into place, so that a reader sees it whole or
// not at all and a crash leaves only a dot-file behind (.NAME.tmp-RANDOM, removed by its owner).
#pragma once

#include <functional>
#include <span>
#include <string>

#include "core/base/error.h"

namespace ember::snapshot {

Result<void> make_folder(const std::string& path);

// `bytes` as `name` in the folder `dir`, replacing what was there; `before_rename` sees the written
// file's descriptor first, where given.
Result<void> write_named(int dir, const std::string& name, std::span<const uint8_t> bytes,
                         const std::function<void(int)>& before_rename = {});

}  // namespace ember::snapshot
