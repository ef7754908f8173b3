// What a process touched to build something and no longer needs, given back to the kernel. A host
// runs a thousand embers, each of which builds or restores its VM once and then runs it with
// little new memory: what the build freed, malloc would keep dirty, and the deepest calls' stack
// pages stay dirty too, in every one of them.
// The other way, touch_ahead(): what a process that waits to build (a ready ember) touches while
// it waits, so that the build does not fault it in then.
#pragma once

#include <cstddef>

namespace ember {

// malloc's free pages, in every arena.
void give_back_freed_heap();

// The pages of the main thread's stack more than `keep` bytes (a page at least) below the caller's
// frame, down to
// the stack's end: dead, since nothing lives below the stack pointer, and zero-filled if touched
// again. On any other thread, nothing: only the main thread's stack ends at an unmapped gap.
void give_back_stack_below_here(size_t keep = 16 * 1024);

// A page fault costs 2-3 us on a paravirtual KVM host (its shadow paging), and a load into a fresh
// ember took about 60 of them, each the first touch of a page: the program's text (in the page
// cache, shared by every ember, but mapped into each process a fault at a time), the main
// thread's stack below the event loop, and malloc's heap. Touches them all ahead:
// - the program's executable segments, mapped (MADV_POPULATE_READ; nothing on a kernel before
//   5.14);
// - `stack_bytes` of the main thread's stack below the caller's frame (nothing on another thread);
// - `heap_bytes` of malloc's heap, made, written and freed: malloc keeps the pages (below its trim
//   threshold, 128 KiB) for the build's allocations.
// give_back_freed_heap() and give_back_stack_below_here() return the heap's and the stack's once
// the build is done; the text's mappings stay, clean and shared.
void touch_ahead(size_t stack_bytes = 64 * 1024, size_t heap_bytes = 96 * 1024);

}  // namespace ember
