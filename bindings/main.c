/* placeholder replaced by the interpreter */
#include "compat.h"
int main(void) { return 0; }
