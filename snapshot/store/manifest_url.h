// A manifest's URL, which names its store and itself: <root>/snapshots/<name>.json, under file://
// (a local directory, an absolute path), or http:// or https:// (a web server; restores only). A
// restore and a push take one.
#pragma once

#include <string>
#include <string_view>

#include "core/base/error.h"

namespace ember::snapshot {

struct ManifestUrl {
    bool remote = false;  // http(s)
    std::string root;     // the store's folder, or its URL
    std::string name;     // the snapshot's name in it
};

// A URL of another scheme (s3) is refused by name.
Result<ManifestUrl> parse_manifest_url(std::string_view url);

}  // namespace ember::snapshot
