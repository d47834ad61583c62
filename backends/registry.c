/* backends/registry.c -- the table of backends and lookup by name.
 *
 * Takes a backend name (as given to --backend), produces a pointer to its
 * vtable.  Backends other than ref register here as they are written; a
 * declaration is enough since each backend defines one const Backend. */
#include "backend.h"
#include <string.h>

static const Backend *const backends[] = {
    &mc_backend_ref,
    &mc_backend_llvm,
};

const Backend *
mc_backend_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}
