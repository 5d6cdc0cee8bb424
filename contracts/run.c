/* placeholder: implemented in a later commit */
#include "contracts/contracts.h"
typedef int ctr__placeholder_run;
