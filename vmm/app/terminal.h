// The host terminal while a guest owns it: raw input (no echo, no line editing, Ctrl-C goes to
// the guest, as with Firecracker), restored however ember exits through main.
#pragma once

#include <termios.h>

#include <optional>

namespace ember {

class RawTerminal {
  public:
    // Puts fd in raw mode if it is a terminal; otherwise does nothing.
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

    bool active() const { return saved_.has_value(); }

  private:
    int fd_;
    std::optional<termios> saved_;
};

}  // namespace ember
