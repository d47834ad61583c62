/* tests/fuzz/fuzz_labels.c -- libFuzzer harness for the labels-file reader
 * (runtime/labels.c).  The input is the file: written to a scratch file
 * (fuzz_file.h) and read by mc_labels_read for any number of names
 * (nclasses 0) and for exactly 3.  Each call must return -1 with a message
 * and no names, or 0 with what mc_labels.h promises: at least one name
 * (exactly 3 when asked), one a line of the file (as many names as lines),
 * each 1..255 bytes without control characters or surrounding blanks, and
 * never from a file holding a NUL or another control character inside a
 * line; never crash, hang or leak.  Seeds: tests/fuzz/corpus/labels/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/mc_labels.h"
#include "fuzz_file.h"

static void
check(const uint8_t *data, size_t size, const char *path, int nclasses)
{
    McLabels l;
    char msg[1024];
    msg[0] = 0;
    if (mc_labels_read(path, nclasses, &l, msg, sizeof msg)) {
        if (!msg[0] || l.n || l.names)
            abort();
        return;
    }
    /* lines: newlines, and a last line without one */
    int lines = size && data[size - 1] != '\n';
    for (size_t i = 0; i < size; i++) {
        lines += data[i] == '\n';
        if (data[i] < 0x20 && data[i] != '\n' && data[i] != '\r' && data[i] != '\t')
            abort(); /* a control character accepted */
        if (data[i] == '\r' && i + 1 < size && data[i + 1] != '\n' && data[i + 1] != '\r' && data[i + 1] != ' ' &&
            data[i + 1] != '\t')
            abort(); /* a carriage return inside a name */
    }
    if (l.n < 1 || (nclasses > 0 && l.n != nclasses) || l.n != lines)
        abort();
    for (int i = 0; i < l.n; i++) {
        size_t n = strlen(l.names[i]);
        if (n < 1 || n > 255 || l.names[i][0] == ' ' || l.names[i][0] == '\t' || l.names[i][n - 1] == ' ' ||
            l.names[i][n - 1] == '\t')
            abort();
        for (size_t j = 0; j < n; j++)
            if ((unsigned char)l.names[i][j] < 0x20 || l.names[i][j] == 0x7f)
                abort();
    }
    mc_labels_free(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_write(data, size);
    check(data, size, path, 0);
    check(data, size, path, 3);
    return 0;
}
