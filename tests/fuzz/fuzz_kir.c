/* tests/fuzz/fuzz_kir.c -- libFuzzer harness for the kernel IR's text form.
 *
 * Takes: arbitrary bytes.  Parses them with mc_kprogram_parse (a parse
 * error must carry file:line:col); a parsed program goes through the
 * verifier, and one that verifies must print, reparse, verify again and
 * print to the very same bytes.  Any violation aborts: it is a real
 * finding.  Kept inputs: tests/fuzz/corpus/kir/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/kernel.h"

static void
finding(const char *what, const char *msg, const char *text)
{
    fprintf(stderr, "fuzz_kir: %s\n%s\n--- text ---\n%s\n", what, msg ? msg : "", text ? text : "");
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    KProgram p, q;
    McErr err;
    if (mc_kprogram_parse(&p, (const char *)data, size, "fuzz.kir", &err) != 0) {
        if (strncmp(err.msg, "fuzz.kir:", 9) != 0) finding("parse error without a location", err.msg, NULL);
        return 0;
    }
    if (mc_kprogram_verify(&p, &err) != 0) { /* refused with a sentence: fine */
        mc_kprogram_free(&p);
        return 0;
    }
    char *s1 = mc_kprogram_print_str(&p);
    if (!s1) finding("print failed", NULL, NULL);
    if (mc_kprogram_parse(&q, s1, strlen(s1), "printed.kir", &err) != 0) finding("printed kernel IR does not parse", err.msg, s1);
    if (mc_kprogram_verify(&q, &err) != 0) finding("printed kernel IR does not verify", err.msg, s1);
    char *s2 = mc_kprogram_print_str(&q);
    if (!s2 || strcmp(s1, s2) != 0) finding("print(parse(print(p))) != print(p)", s2, s1);
    free(s1);
    free(s2);
    mc_kprogram_free(&p);
    mc_kprogram_free(&q);
    return 0;
}
