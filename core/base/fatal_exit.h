// How a fatal signal's handler ends ember (seccomp's SIGSYS report, the SIGBUS of a truncated
// memory file): at once, but without leaving behind what a user would trip over, the API socket
// file (the next ember at that path would be refused) and a terminal in raw mode. Only the VMM
// thread's filter allows undoing those (unlink, TCSETS), so another thread hands its exit to the
// VMM thread and waits; should that thread not end the process within a second, it exits itself.
// Process-wide state, because signal handlers have nowhere else to find it; everything here is
// async-signal-safe but remember_* and init.
#pragma once

#include <termios.h>

#include <string>

namespace ember::fatal_exit {

// Once, before any other thread: the eventfd a dying thread rings.
void init();
int notify_fd();
// The calling thread is the VMM thread, which undoes and exits itself.
void mark_vmm_thread();

void remember_socket(const std::string& path);
void remember_terminal(int fd, const termios& saved);
void forget_terminal();

// Ends the process with `status`, the socket file removed and the terminal restored.
[[noreturn]] void exit_now(int status);
// On the VMM thread, once notify_fd() rings: the exit another thread asked for.
[[noreturn]] void finish();
// Ends the process with `status` from the calling thread, undoing as exit_now does: for a thread
// whose filter allows it (the VMM thread's) that cannot wait for the VMM thread.
[[noreturn]] void exit_here(int status);

}  // namespace ember::fatal_exit
