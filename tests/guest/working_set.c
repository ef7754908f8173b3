/* For the working-set tests: fills 1024 pages, says 'R', then for every burst of keystrokes the
 * host injects through the i8042 (SendCtrlAltDel) reads pages 0-511, rewrites pages 512-767 and
 * leaves the rest alone. Each page it touches must still hold what the fill wrote: it says 'T'
 * when all did and '?' when one did not, so a restore that brought in another clone's writes
 * instead of the snapshot's pages shows. */
#include "guest.h"

#define BASE 0x1000000ull
#define PAGES 1024
#define READ_PAGES 512
#define WRITTEN_PAGES 256

static volatile uint64_t* page(uint64_t p) {
    return (volatile uint64_t*)(BASE + p * 4096);
}

int guest_main(void) {
    for (uint64_t p = 0; p < PAGES; ++p) *page(p) = p + 1;
    putc('R');
    for (;;) {
        while (!(inb(0x64) & 1)) {
        }
        while (inb(0x64) & 1) (void)inb(0x60);
        int ok = 1;
        for (uint64_t p = 0; p < READ_PAGES; ++p) ok &= *page(p) == p + 1;
        for (uint64_t p = READ_PAGES; p < READ_PAGES + WRITTEN_PAGES; ++p) {
            ok &= *page(p) == p + 1;
            *page(p) = p + 1000000;
        }
        putc(ok ? 'T' : '?');
    }
}
