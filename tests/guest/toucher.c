/* For perf/snapshot: fills 64 MiB, says 'R', then for every burst of keystrokes the host injects
 * through the i8042 (SendCtrlAltDel) reads one byte of each of its 16384 pages and says 'T'. */
#include "guest.h"

#define BASE 0x1000000ull
#define PAGES (64 * 1024 * 1024 / 4096)

int guest_main(void) {
    for (uint64_t p = 0; p < PAGES; ++p) *(volatile uint64_t*)(BASE + p * 4096) = p + 1;
    putc('R');
    for (;;) {
        while (!(inb(0x64) & 1)) {
        }
        while (inb(0x64) & 1) (void)inb(0x60);
        uint64_t sum = 0;
        for (uint64_t p = 0; p < PAGES; ++p) sum += *(volatile uint8_t*)(BASE + p * 4096);
        putc(sum ? 'T' : '?');
    }
}
