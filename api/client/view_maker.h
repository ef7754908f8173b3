// api/client: a store's snapshot made into a view in the background (`ember-snapshot view`), for
// the restores on this host after the one that could not wait for it (ReadyPool::restore_on_host,
// emberctl restore --on-host).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "api/client/store_view.h"
#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::client {

// ember-snapshot view at the lowest CPU priority and the lowest of the ordinary I/O priorities
// (not the idle class, which a busy disk starves while the maker holds chunks' locks that a
// restore may wait on). Its owner reaps it, and stops it (SIGKILL, through its pidfd) where it is
// dropped before its end or runs past the view's timeout; the cache sets aside what a maker that
// died left. Its output goes nowhere; the end of what it said is kept for its error.
class ViewMaker {
  public:
    static Result<ViewMaker> start(const StoreView& view);
    ViewMaker(ViewMaker&& other) noexcept;
    ViewMaker& operator=(ViewMaker&& other) noexcept;
    ViewMaker(const ViewMaker&) = delete;
    ViewMaker& operator=(const ViewMaker&) = delete;
    ~ViewMaker();

    // Whether it has ended, reaped now if so (stopped first where past its timeout); never waits.
    // One that someone else reaped (a SIGCHLD handler's waitpid(-1)) has ended too.
    bool ended();
    // Once ended(): whether it made (or found) the view, and where not, why.
    Result<void> result() const;
    // Readable once it has ended.
    int pidfd() const { return pidfd_.get(); }
    const std::string& manifest_url() const { return manifest_url_; }
    // When it is stopped where it has not ended: its start and the view's timeout.
    std::chrono::steady_clock::time_point deadline() const { return deadline_; }
    // Leaves it running when this object goes, for a caller that ends first (it is reparented).
    void let_go() { pid_ = -1; }

  private:
    ViewMaker(pid_t pid, UniqueFd pidfd, UniqueFd err, const StoreView& view);
    // Kills it and waits for its end.
    void stop();
    // Reaps it, once its pidfd says it has ended.
    void reap();

    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd err_;  // a memfd: its stderr
    std::string manifest_url_;
    std::chrono::milliseconds timeout_{0};
    std::chrono::steady_clock::time_point deadline_;
    bool late_ = false;       // stopped at its deadline
    bool elsewhere_ = false;  // reaped by someone else: how it ended is not known
    int status_ = -1;
};

}  // namespace ember::client
