/* For the tests of a memory file whose file system fills: says 'R', then, once the host injects a
 * keystroke through the i8042 (SendCtrlAltDel), writes a pattern into each of 48 MiB of pages it
 * had never touched, reads them all back and says 'V' if every page kept its pattern, 'L' if one
 * lost it (read back as written by nobody). */
#include "guest.h"

#define BASE 0x1000000ull
#define PAGES (48 * 1024 * 1024 / 4096)

int guest_main(void) {
    putc('R');
    while (!(inb(0x64) & 1)) {
    }
    while (inb(0x64) & 1) (void)inb(0x60);
    for (uint64_t p = 0; p < PAGES; ++p) *(volatile uint64_t*)(BASE + p * 4096) = p + 1;
    for (uint64_t p = 0; p < PAGES; ++p) {
        if (*(volatile uint64_t*)(BASE + p * 4096) != p + 1) {
            putc('L');
            for (;;) __asm__ volatile("hlt");
        }
    }
    putc('V');
    for (;;) __asm__ volatile("hlt");
}
