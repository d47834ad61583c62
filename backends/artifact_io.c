/* backends/artifact_io.c -- what an artifact tells its users' tools
 * (runtime/mc_labels.h McModelIO): written as C for the executables' glue
 * (mc_model_io) and as JSON for shared libraries (mambac_info(), which the
 * Python module reads; docs/python.md).
 *
 * Takes: the artifact's metadata.  Produces: C source / JSON text on a FILE.
 */
#include "artifact.h"
#include "../runtime/mc_labels.h"
#include <stdio.h>
#include <string.h>

static const char *
interp_name(int i)
{
    return i == MC_INTERP_NEAREST ? "nearest" : i == MC_INTERP_BILINEAR ? "bilinear" : "bicubic";
}

static const char *
kind_name(int k)
{
    static const char *const names[] = {"other", "classifier", "segmentor", "backbone"};
    return k >= 0 && k < 4 ? names[k] : "other";
}

/* The defaults when the caller gave no McModelIO: from the shapes alone. */
static McModelIO
io_of(const McArtifact *a)
{
    if (a->io)
        return *a->io;
    McModelIO io;
    memset(&io, 0, sizeof io);
    int r = a->in_shape.rank;
    io.pre = mc_preproc_default(r == 4 ? (int)a->in_shape.d[2] : 0, r == 4 ? (int)a->in_shape.d[3] : 0);
    if (a->noutputs == 1 && a->out_shapes[0].rank == 2)
        io.kind = MC_IO_CLASSIFIER;
    return io;
}

void
mc_artifact_write_io_c(FILE *f, const McArtifact *a, const char *var, int is_static)
{
    McModelIO io = io_of(a);
    int n = io.nclasses;
    if (io.classes && n > 0) {
        fprintf(f, "static const char *const %s_classes[%d] = {\n", var, n);
        for (int i = 0; i < n; i++) {
            fputs("    ", f);
            mc_artifact_c_string(f, io.classes[i]);
            fputs(",\n", f);
        }
        fputs("};\n", f);
    }
    if (io.palette && n > 0) {
        fprintf(f, "static const unsigned char %s_palette[%d][3] = {\n", var, n);
        for (int i = 0; i < n; i++)
            fprintf(f, "    {%d, %d, %d},\n", io.palette[i][0], io.palette[i][1], io.palette[i][2]);
        fputs("};\n", f);
    }
    fprintf(f, "%sconst McModelIO %s = {\n    .kind = %d,\n", is_static ? "static " : "", var, io.kind);
    fprintf(f, "    .pre = {%d, %d, %d, %.17g, %d, {%.9g, %.9g, %.9g}, {%.9g, %.9g, %.9g}},\n", io.pre.H, io.pre.W,
            io.pre.crop, io.pre.crop_pct, (int)io.pre.interp, io.pre.mean[0], io.pre.mean[1], io.pre.mean[2],
            io.pre.std[0], io.pre.std[1], io.pre.std[2]);
    fprintf(f, "    .align_corners = %d,\n    .nclasses = %d,\n", io.align_corners, n);
    if (io.classes && n > 0)
        fprintf(f, "    .classes = %s_classes,\n", var);
    if (io.classes_from) {
        fputs("    .classes_from = ", f);
        mc_artifact_c_string(f, io.classes_from);
        fputs(",\n", f);
    }
    if (io.palette && n > 0)
        fprintf(f, "    .palette = %s_palette,\n", var);
    fputs("};\n", f);
}


static void
json_str_or_null(FILE *f, const char *s)
{
    if (s && *s)
        mc_labels_json_string(f, s);
    else
        fputs("null", f);
}

void
mc_artifact_info_json(FILE *f, const McArtifact *a, int images)
{
    McModelIO io = io_of(a);
    char sym[300];
    fputs("{\"name\": ", f);
    mc_labels_json_string(f, a->name);
    snprintf(sym, sizeof sym, "%s_run", a->name);
    fputs(", \"entry\": ", f);
    mc_labels_json_string(f, sym);
    snprintf(sym, sizeof sym, "%s_check_cpu", a->name);
    fputs(", \"check_cpu\": ", f);
    json_str_or_null(f, a->nvariants ? sym : NULL);
    fputs(", \"target\": ", f);
    json_str_or_null(f, a->triple && *a->triple ? a->triple : "host");
    fputs(", \"cpu\": ", f);
    json_str_or_null(f, a->cpu);
    fprintf(f, ", \"precision\": \"%s\", \"kind\": \"%s\",\n \"input\": {\"name\": \"x\", \"shape\": ",
            a->precision ? a->precision : "fp32", kind_name(io.kind));
    mc_artifact_shape_list(f, &a->in_shape, "[]");
    fputs(", \"dtype\": \"float32\"},\n \"outputs\": [", f);
    for (int j = 0; j < a->noutputs; j++) {
        fputs(j ? ", {\"name\": " : "{\"name\": ", f);
        json_str_or_null(f, a->out_names[j]);
        fputs(", \"shape\": ", f);
        mc_artifact_shape_list(f, &a->out_shapes[j], "[]");
        fputs(", \"dtype\": \"float32\"}", f);
    }
    fprintf(f, "],\n \"weights_size\": %llu, \"scratch_size\": %lld, \"alignment\": 64,\n",
            (unsigned long long)a->weights_len, (long long)a->scratch_size);
    fprintf(f, " \"preprocess\": {\"size\": [%d, %d], \"crop\": %s, \"crop_pct\": %.17g, \"interpolation\": \"%s\", "
               "\"mean\": [%.9g, %.9g, %.9g], \"std\": [%.9g, %.9g, %.9g]},\n",
            io.pre.H, io.pre.W, io.pre.crop ? "true" : "false", io.pre.crop_pct, interp_name(io.pre.interp),
            io.pre.mean[0], io.pre.mean[1], io.pre.mean[2], io.pre.std[0], io.pre.std[1], io.pre.std[2]);
    fprintf(f, " \"align_corners\": %s,\n \"classes\": ", io.align_corners ? "true" : "false");
    if (io.classes && io.nclasses > 0) {
        fputc('[', f);
        for (int i = 0; i < io.nclasses; i++) {
            if (i)
                fputs(i % 8 ? ", " : ",\n  ", f);
            mc_labels_json_string(f, io.classes[i]);
        }
        fputc(']', f);
    } else {
        fputs("null", f);
    }
    fputs(",\n \"classes_from\": ", f);
    json_str_or_null(f, io.classes ? io.classes_from : NULL);
    fputs(",\n \"palette\": ", f);
    if (io.palette && io.nclasses > 0) {
        fputc('[', f);
        for (int i = 0; i < io.nclasses; i++)
            fprintf(f, "%s[%d, %d, %d]", i ? ", " : "", io.palette[i][0], io.palette[i][1], io.palette[i][2]);
        fputc(']', f);
    } else {
        fputs("null", f);
    }
    fprintf(f, ",\n \"images\": %s}\n", images ? "true" : "false");
}
