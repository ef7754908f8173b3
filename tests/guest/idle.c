/* Says it is up, then halts with interrupts off: a VM that costs its VMM nothing more, for
 * measuring the VMM's own memory. */
#include "guest.h"

int guest_main(void) {
    puts("idle\n");
    for (;;) __asm__ volatile("cli; hlt");
}
