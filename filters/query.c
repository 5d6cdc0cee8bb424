/* placeholder: implemented in a later commit */
#include "filters/filters.h"
typedef int flt__placeholder_query;
