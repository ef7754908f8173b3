#include <cerrno>

#include "virtio/net/net_engine.h"

namespace ember::virtio {
namespace {

class SyncNetEngine : public NetEngine {
  public:
    explicit SyncNetEngine(const Tap& tap) : tap_(tap) {}

    WriteResult write(std::span<const std::span<const iovec>> frames) override {
        WriteResult r;
        for (const auto& frame : frames) {
            ++calls_;
            const ssize_t n = tap_.write(frame);
            if (n < 0) {
                r.error = static_cast<int>(n);
                break;
            }
            ++r.written;
        }
        return r;
    }

    ReadResult read(std::span<const std::span<uint8_t>> buffers,
                    std::span<size_t> lengths) override {
        ReadResult r;
        for (const auto& buffer : buffers) {
            ++calls_;
            const ssize_t n = tap_.read(buffer);
            if (n == -EAGAIN) break;
            if (n < 0) {
                r.error = static_cast<int>(n);
                break;
            }
            lengths[r.read++] = static_cast<size_t>(n);
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
