// api/client: a store's snapshot made whole in the host's chunk cache, for a File load
// (`ember-snapshot view`; README, "A host that runs the function again: its view"): found at once
// where it is pinned by its manifest's SHA-256 and was made this boot, else made, and the load
// that names it. Every clone loaded from it maps the page cache's one copy of its memory, where a
// restore through ember-uffd copies the working set into each.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/actions.h"
#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::client {

struct StoreView {
    std::string manifest_url;     // file://, http://, https:// or s3://
    std::string cache_dir;        // the host's chunk cache, which holds the view
    uint64_t cache_bytes = 0;     // its bound; 0: ember-snapshot's own (4 GiB)
    std::string manifest_sha256;  // the pin, as push printed it; empty: the store is asked
    std::string ember_snapshot = "ember-snapshot";
    // Making a view fetches what the cache lacks of the snapshot's whole memory.
    std::chrono::milliseconds timeout{300'000};
    bool resume_vm = true;
};

// Runs ember-snapshot view and reads the load it prints; an error carries its last line.
Result<LoadSnapshot> view_load(const StoreView& view);
// ember-snapshot find-view: the load of a view made this boot, or nullopt where none is (nothing
// is made or fetched then).
Result<std::optional<LoadSnapshot>> find_view_load(const StoreView& view);

// ember-snapshot view run in the background at the lowest CPU priority, for the restores after
// this one: its owner reaps it, and stops it (SIGKILL) where it is dropped before its end or runs
// past the view's timeout; the cache sets aside what a maker that died left. Its output goes
// nowhere; its error's last line is kept.
class ViewMaker {
  public:
    static Result<ViewMaker> start(const StoreView& view);
    ViewMaker(ViewMaker&& other) noexcept;
    ViewMaker& operator=(ViewMaker&& other) noexcept;
    ViewMaker(const ViewMaker&) = delete;
    ViewMaker& operator=(const ViewMaker&) = delete;
    ~ViewMaker();

    // Whether it has ended, reaped now if so (stopped first where past its timeout); never waits.
    bool ended();
    // Once ended(): whether it made (or found) the view, and where not, why.
    Result<void> result() const;
    int pidfd() const { return pidfd_.get(); }
    // Leaves it running when this object goes, for a caller that ends first (it is reparented).
    void let_go() { pid_ = -1; }
    const std::string& manifest_url() const { return manifest_url_; }

  private:
    ViewMaker(pid_t pid, UniqueFd pidfd, UniqueFd err, std::string manifest_url,
              std::chrono::milliseconds timeout);
    void stop();

    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd err_;  // a memfd: its stderr
    std::string manifest_url_;
    std::chrono::milliseconds timeout_{0};
    std::chrono::steady_clock::time_point deadline_;
    bool late_ = false;  // stopped at its deadline
    int status_ = -1;
};

}  // namespace ember::client
