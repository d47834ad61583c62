/* backends/registry.c -- the table of backends and lookup by name.
 *
 * Takes a backend name (as given to --backend), produces a pointer to its
 * vtable.  Backends other than ref register here as they are written; a
 * declaration is enough since each backend defines one const Backend. */
#include "backend.h"
#include <string.h>

const Backend *const mc_backends[] = {
    &mc_backend_ref,
    &mc_backend_llvm,
    &mc_backend_cuda,
    NULL,
};

const Backend *
mc_backend_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; mc_backends[i]; i++)
        if (strcmp(mc_backends[i]->name, name) == 0) return mc_backends[i];
    return NULL;
}
