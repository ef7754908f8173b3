#include "vmm/app/terminal.h"

#include <unistd.h>

#include "core/base/fatal_exit.h"

namespace ember {

RawTerminal::RawTerminal(int fd) : fd_(fd) {
    termios t{};
    if (!::isatty(fd) || ::tcgetattr(fd, &t) != 0) return;
    saved_ = t;
    fatal_exit::remember_terminal(fd, t);
    t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    ::tcsetattr(fd, TCSANOW, &t);
}

RawTerminal::~RawTerminal() {
    if (!saved_) return;
    fatal_exit::forget_terminal();
    ::tcsetattr(fd_, TCSANOW, &*saved_);
}

}  // namespace ember
