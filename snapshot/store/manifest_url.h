// A manifest's URL, which names its store and itself: <root>/snapshots/<name>.json under file://
// (a local directory, an absolute path). A restore and a push take one.
#pragma once

#include <string>
#include <string_view>

#include "core/base/error.h"

namespace ember::snapshot {

struct ManifestUrl {
    std::string root;  // the store's folder
    std::string name;  // the snapshot's name in it
};

// A URL of another scheme (http, https, s3) is refused by name: this ember reads file:// stores.
Result<ManifestUrl> parse_manifest_url(std::string_view url);

}  // namespace ember::snapshot
