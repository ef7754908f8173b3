#include <unistd.h>

#include <cerrno>

#include "core/base/file_io.h"
#include "virtio/block/io_engine.h"

namespace ember::virtio {
namespace {

class SyncEngine : public IoEngine {
  public:
    explicit SyncEngine(int fd) : fd_(fd) {}

    bool push(const IoOp& op) override {
        done_.push_back(IoCompletion{op.tag, execute(op)});
        return true;
    }
    void submit() override {}
    void reap(std::vector<IoCompletion>& out) override {
        out.insert(out.end(), done_.begin(), done_.end());
        done_.clear();
    }
    void drain(std::vector<IoCompletion>& out) override { reap(out); }
    bool drain_for(std::vector<IoCompletion>& out, std::chrono::milliseconds) override {
        reap(out);
        return true;
    }
    int completion_fd() const override { return -1; }
    size_t in_flight() const override { return done_.size(); }
    Result<void> replace_file(int fd) override {
        fd_ = fd;
        return {};
    }

  private:
    int64_t execute(const IoOp& op) const {
        if (op.kind == IoOp::Kind::Flush) return ::fdatasync(fd_) == 0 ? 0 : -errno;
        // Loop over short transfers: one request is one operation to the guest.
        int64_t total = 0;
        std::vector<iovec> iov(op.iov.begin(), op.iov.end());
        size_t first = 0;
        while (first < iov.size()) {
            ssize_t n = retry_on_eintr([&] {
                return op.kind == IoOp::Kind::Read
                           ? ::preadv(fd_, iov.data() + first, static_cast<int>(iov.size() - first),
                                      static_cast<off_t>(op.offset + total))
                           : ::pwritev(fd_, iov.data() + first,
                                       static_cast<int>(iov.size() - first),
                                       static_cast<off_t>(op.offset + total));
            });
            if (n < 0) return -errno;
            if (n == 0) break;
            total += n;
            auto left = static_cast<size_t>(n);
            while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
            if (first < iov.size()) {
                iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
                iov[first].iov_len -= left;
            }
        }
        return total;
    }

    int fd_;
    std::vector<IoCompletion> done_;
};

}  // namespace

std::unique_ptr<IoEngine> make_sync_engine(int fd) {
    return std::make_unique<SyncEngine>(fd);
}

}  // namespace ember::virtio
