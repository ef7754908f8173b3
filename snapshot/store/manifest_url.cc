#include "snapshot/store/manifest_url.h"

#include "snapshot/store/directory_store.h"

namespace ember::snapshot {

Result<ManifestUrl> parse_manifest_url(std::string_view url) {
    const std::string shown(url.substr(0, 300));
    ManifestUrl out;
    std::string_view path;
    if (url.starts_with("file://")) {
        path = url.substr(7);
        if (!path.starts_with("/"))
            return fail("manifest URL '" + shown + "': a file:// URL holds an absolute path");
    } else if (url.starts_with("http://") || url.starts_with("https://") ||
               url.starts_with("s3://")) {
        out.remote = true;
        path = url;
    } else {
        const size_t colon = url.find("://");
        if (colon < 10)
            return fail(
                "manifest URL '" + shown + "': the scheme '" + std::string(url.substr(0, colon)) +
                "' is not one this ember reads; it reads file://, http://, https:// and s3://");
        return fail("manifest URL '" + shown + "': not a URL (file:///STORE/snapshots/NAME.json)");
    }
    constexpr std::string_view kFolder = "/snapshots/";
    const size_t folder = path.rfind(kFolder);
    if (folder == std::string_view::npos || !path.ends_with(".json") ||
        path.find_first_of("%?# \r\n\t") != std::string_view::npos)
        return fail("manifest URL '" + shown + "': a manifest is at STORE/snapshots/NAME.json");
    if (!out.remote && folder == 0)
        return fail("manifest URL '" + shown + "': a store's folder is not /");
    out.root = std::string(path.substr(0, folder));
    const std::string_view file = path.substr(folder + kFolder.size());
    out.name = std::string(file.substr(0, file.size() - 5));
    EMBER_TRY(check_snapshot_name(out.name), "manifest URL '" + shown + "'");
    return out;
}

}  // namespace ember::snapshot
