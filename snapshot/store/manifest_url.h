// A manifest's URL, which names its store and itself: <root>/snapshots/<name>.json, under file://
// (a local directory, an absolute path), http:// or https:// (a web server), or s3://BUCKET/...
// (an S3 bucket; http(s) and s3 for restores only). A restore and a push take one.
#pragma once

#include <string>
#include <string_view>

#include "core/base/error.h"

namespace ember::snapshot {

struct ManifestUrl {
    bool remote = false;  // http(s) or s3
    std::string root;     // the store's folder, or its URL
    std::string name;     // the snapshot's name in it
};

// A URL of another scheme is refused by name.
Result<ManifestUrl> parse_manifest_url(std::string_view url);

}  // namespace ember::snapshot
