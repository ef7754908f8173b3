// What a process touched to build something and no longer needs, given back to the kernel. A host
// runs a thousand embers, each of which builds or restores its VM once and then runs it with
// little new memory: what the build freed, malloc would keep dirty, and the deepest calls' stack
// pages stay dirty too, in every one of them.
#pragma once

#include <cstddef>

namespace ember {

// malloc's free pages, in every arena.
void give_back_freed_heap();

// The pages of the main thread's stack more than `keep` bytes below the caller's frame, down to
// the stack's end: dead, since nothing lives below the stack pointer, and zero-filled if touched
// again. On any other thread, nothing: only the main thread's stack ends at an unmapped gap.
void give_back_stack_below_here(size_t keep = 16 * 1024);

}  // namespace ember
