#include <cerrno>

#include "virtio/net/net_engine.h"

namespace ember::virtio {
namespace {

class SyncNetEngine : public NetEngine {
  public:
    explicit SyncNetEngine(const Tap& tap) : tap_(tap) {}

    int write(std::span<const std::span<const iovec>> frames, std::span<int> results) override {
        size_t i = 0;
        for (; i < frames.size(); ++i) {
            ++calls_;
            const ssize_t n = tap_.write(frames[i]);
            size_t want = 0;
            for (const auto& v : frames[i]) want += v.iov_len;
            // A tap takes a frame whole or not at all: a short write is a refusal.
            results[i] = n < 0 ? static_cast<int>(n) : static_cast<size_t>(n) == want ? 0 : -EIO;
            if (n == -EAGAIN) break;
        }
        for (++i; i < frames.size(); ++i) results[i] = -ECANCELED;
        return 0;
    }

    ReadResult read(std::span<const std::span<uint8_t>> buffers,
                    std::span<size_t> lengths) override {
        ReadResult r;
        for (const auto& buffer : buffers) {
            ++calls_;
            const ssize_t n = tap_.read(buffer);
            if (n == -EAGAIN) {
                r.drained = true;
                break;
            }
            if (n < 0) {
                r.error = static_cast<int>(n);
                break;
            }
            lengths[r.looked++] = static_cast<size_t>(n);
        }
        return r;
    }

    uint64_t system_calls() const override { return calls_; }

  private:
    const Tap& tap_;
    uint64_t calls_ = 0;
};

}  // namespace

std::unique_ptr<NetEngine> make_sync_net_engine(const Tap& tap) {
    return std::make_unique<SyncNetEngine>(tap);
}

}  // namespace ember::virtio
