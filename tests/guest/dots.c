/* For perf/snapshot: writes '.' to COM1 forever, so a restored guest's first instruction shows. */
#include "guest.h"

int guest_main(void) {
    for (;;) outb(0x3f8, '.');
}
