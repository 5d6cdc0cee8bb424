/* placeholder: the command line lands in a later commit */
#include <stdio.h>
int main(void)
{
    fputs("privgate: not built yet\n", stderr);
    return 1;
}
