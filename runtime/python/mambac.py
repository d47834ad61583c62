"""runtime/python/mambac.py -- a model compiled by `mambac compile --emit
shared` run from Python: ctypes and numpy, no build step.

Takes: OUT.so and the OUT.weights written beside it by
    mambac compile MODEL.yaml [--weights ckpt.pth] --emit shared -o OUT
(the library describes itself: its exported mambac_info() is a JSON object
with the entry point, shapes, sizes, preprocessing and class names).
Produces: the model's outputs as numpy arrays (one output: the array;
several: a dict name -> array), images read and preprocessed by the model's
own evaluation transform, top-k classes with softmax probabilities and
names, a segmentor's class maps at each image's own size.

    import mambac
    m = mambac.Model("tiny.so")              # tiny.weights beside it, or weights=PATH
    m.threads = 2
    x, sizes = m.load_images(["cat.jpg", "dog.png"])
    for k in m.top(m(x), 5)[0]:
        print(k.index, k.name, k.prob)

Every failure raises a subclass of mambac.Error (which also derives from
the built-in exception a Python user would expect: ValueError for a wrong
shape, TypeError for a wrong dtype, OSError for a missing file) with one
sentence naming the file or the array.  docs/python.md has the details.

A Model holds one scratch buffer, so one inference runs at a time per
Model: calls from several threads are serialized by a lock (make one Model
per thread to run them side by side; the weights, memory-mapped read-only,
are shared by the page cache).  The thread count (`threads`) belongs to the
loaded library: Models of the same .so share it.

Run as a script it prints the model's description, or the top-k classes of
images:  python3 mambac.py tiny.so [IMAGE ...] [--top K] [--threads N]
"""
import collections
import ctypes
import json
import os
import sys
import threading

import numpy as np

__all__ = ["Model", "read_info", "Top", "Error", "LibraryError", "WeightsError", "CPUError",
           "ShapeError", "DTypeError", "LayoutError", "ImageError", "RunError"]

ALIGNMENT = 64
MSG_LEN = 1024
CPU_UNSUPPORTED = 86        # what <entry> returns when no compiled variant runs here


class Error(Exception):
    """Every error of this module."""


class LibraryError(Error, OSError):
    """The .so is missing, cannot be loaded, or is not a mambac model."""


class WeightsError(Error, OSError):
    """The weights file is missing or does not have the model's size."""


class CPUError(Error, RuntimeError):
    """This CPU cannot run the compiled code (the library's own sentence)."""


class ShapeError(Error, ValueError):
    """An array of the wrong shape."""


class DTypeError(Error, TypeError):
    """An array of the wrong element type, or not an array."""


class LayoutError(Error, ValueError):
    """An array that is not C-contiguous."""


class ImageError(Error, OSError):
    """An image that cannot be read (the library's sentence, naming the file)."""


class RunError(Error, RuntimeError):
    """The entry point returned an error status."""


Top = collections.namedtuple("Top", "index name prob")
Top.__doc__ = "One of the k best classes: class index, name (None when unknown), softmax probability."


def _load_library(path):
    """(ctypes library, info dict) of a mambac .so, or LibraryError."""
    if not os.path.isfile(path):
        raise LibraryError("%s: no such file (the .so that `mambac compile --emit shared -o NAME` "
                           "writes)" % path)
    try:
        lib = ctypes.CDLL(os.path.abspath(path))
    except OSError as e:
        raise LibraryError("%s: cannot be loaded as a shared library for this machine: %s" % (path, e)) from None
    try:
        fn = lib.mambac_info
    except AttributeError:
        raise LibraryError("%s: not a model library written by `mambac compile --emit shared` "
                           "(it exports no mambac_info)" % path) from None
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    try:
        info = json.loads(fn().decode("utf-8"))
        shapes = [info["input"]["shape"]] + [o["shape"] for o in info["outputs"]]
        if not all(isinstance(v, int) and v >= 1 for s in shapes for v in s) or not shapes[1:] or \
                not all(isinstance(info[k], str) for k in ("name", "entry")) or \
                not all(isinstance(info[k], int) for k in ("weights_size", "scratch_size")):
            raise ValueError("no outputs, or a shape, name or size of the wrong type")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LibraryError("%s: its mambac_info() is not a model description this module reads (%s)"
                           % (path, e)) from None
    return lib, info


def read_info(path):
    """The model description of a mambac .so (the JSON of its mambac_info()),
    without its weights; raises LibraryError."""
    return _load_library(path)[1]


def _aligned(nbytes):
    """A zeroed uint8 array of nbytes (at least one alignment unit) whose
    data starts on an ALIGNMENT boundary."""
    n = max(int(nbytes), ALIGNMENT)
    raw = np.zeros(n + ALIGNMENT, np.uint8)
    off = (-raw.ctypes.data) % ALIGNMENT
    return raw[off:off + n]


def _shape_text(shape):
    return "[%s]" % ",".join(str(v) for v in shape)


class Model:
    """A compiled model: Model(path_to_so, weights=None, threads=None).

    weights: the weights file (default: the .so's path with .weights instead
    of .so), memory-mapped read-only; its size must be the model's.
    threads: set the library's thread count (0: OMP_NUM_THREADS, else all
    cores).  Raises LibraryError, WeightsError, CPUError."""

    def __init__(self, path, weights=None, threads=None):
        self.path = path
        self._lib, self.info = _load_library(path)
        info = self.info
        check = info.get("check_cpu")
        if check:
            fn = self._sym(check)
            fn.restype = ctypes.c_char_p
            fn.argtypes = []
            why = fn()
            if why:
                raise CPUError("%s: %s" % (path, why.decode("utf-8", "replace")))
        self.name = info["name"]
        self.kind = info.get("kind", "other")
        self.input_shape = tuple(int(v) for v in info["input"]["shape"])
        self.output_names = [o["name"] for o in info["outputs"]]
        self.output_shapes = {o["name"]: tuple(int(v) for v in o["shape"]) for o in info["outputs"]}
        self.batch = self.input_shape[0]
        # any number of images when every array's first dimension is the batch
        self._batched = len(self.input_shape) >= 2 and all(
            len(s) >= 1 and s[0] == self.batch for s in self.output_shapes.values())
        self.weights_path = weights if weights is not None else os.path.splitext(path)[0] + ".weights"
        self._weights = self._map_weights(self.weights_path, int(info["weights_size"]))
        self._scratch = _aligned(int(info["scratch_size"]))
        self._run = self._sym(info["entry"])
        self._run.restype = ctypes.c_int
        self._run.argtypes = [ctypes.c_void_p] * (3 + len(self.output_names))
        self._set_threads = self._sym("mc_rt_set_threads")
        self._set_threads.argtypes = [ctypes.c_int]
        self._set_threads.restype = None
        self._get_threads = self._sym("mc_rt_get_threads")
        self._get_threads.argtypes = []
        self._get_threads.restype = ctypes.c_int
        self._lock = threading.Lock()
        if threads is not None:
            self.threads = threads

    def _sym(self, name):
        """The library's function `name`, or LibraryError."""
        try:
            return getattr(self._lib, name)
        except AttributeError:
            raise LibraryError("%s: exports no %s (not a library this mambac wrote)" % (self.path, name)) from None

    @staticmethod
    def _map_weights(path, size):
        try:
            have = os.stat(path).st_size
        except OSError as e:
            raise WeightsError("%s: cannot be read (%s): the weights file `mambac compile --emit shared` "
                               "writes beside the .so, or pass weights=PATH" % (path, e.strerror)) from None
        if have != size:
            raise WeightsError("%s: %d bytes, the model needs %d (%s; use the .weights written with "
                               "this .so)" % (path, have, size, "truncated" if have < size else "another model's"))
        if size == 0:
            return _aligned(0)
        try:
            w = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
        except (OSError, ValueError) as e:
            raise WeightsError("%s: cannot be mapped: %s" % (path, e)) from None
        if w.ctypes.data % ALIGNMENT:   # mmap gives pages; copy if ever not
            a = _aligned(size)
            a[:] = w
            w = a
        return w

    # ------------------------------------------------------------ settings
    @property
    def threads(self):
        """Worker threads of the library (shared by its Models); setting 0
        restores the default (OMP_NUM_THREADS, else all cores)."""
        return int(self._get_threads())

    @threads.setter
    def threads(self, n):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError("threads must be an integer >= 0 (0: the default), not %r" % (n,))
        self._set_threads(int(n))

    @property
    def classes(self):
        """The class names (a list) or None when the model has none."""
        return self.info.get("classes")

    @property
    def palette(self):
        """A segmentor's colours, [[r, g, b], ...] per class, or None."""
        return self.info.get("palette")

    def __repr__(self):
        outs = ", ".join("%s %s" % (n, _shape_text(self.output_shapes[n])) for n in self.output_names)
        return "<mambac.Model %s: %s %s -> %s, %s>" % (self.name, self.kind, _shape_text(self.input_shape), outs,
                                                      self.info.get("target"))

    # ------------------------------------------------------------ inference
    def _check_input(self, x):
        if not isinstance(x, np.ndarray):
            raise DTypeError("the input must be a numpy.ndarray of float32, not %s" % type(x).__name__)
        if x.dtype != np.float32:
            raise DTypeError("the input is %s; the model takes float32 (x.astype(numpy.float32))" % x.dtype)
        want = self.input_shape
        if self._batched:
            ok = x.ndim == len(want) and x.shape[0] >= 1 and tuple(x.shape[1:]) == want[1:]
            what = "[N,%s] (any N >= 1, run %d at a time)" % (",".join(str(v) for v in want[1:]), self.batch)
        else:
            ok = tuple(x.shape) == want
            what = _shape_text(want)
        if not ok:
            raise ShapeError("the input has shape %s; %s takes %s: recompile with mambac compile "
                             "--batch/--image-size to change it" % (_shape_text(x.shape), self.name, what))
        if not x.flags.c_contiguous:
            raise LayoutError("the input is not C-contiguous (a transposed or strided view): "
                              "pass numpy.ascontiguousarray(x)")
        return x

    def _call(self, xp, outs):
        rc = self._run(self._weights.ctypes.data, xp, *outs, self._scratch.ctypes.data)
        if rc == CPU_UNSUPPORTED:
            raise CPUError("%s: this CPU cannot run any compiled variant" % self.path)
        if rc != 0:
            raise RunError("%s: %s returned %d" % (self.path, self.info["entry"], rc))

    def __call__(self, x):
        """Runs the model on x (float32, C-contiguous, the compiled shape; a
        model whose input and outputs all start with the batch takes any
        number N of images, run B at a time, the last chunk padded with
        zeros).  Returns the output array, or a dict name -> array for
        several outputs."""
        x = self._check_input(x)
        B = self.batch
        n = x.shape[0] if self._batched else B
        chunks = -(-n // B)
        outs = [np.empty((chunks * B,) + self.output_shapes[k][1:] if self._batched else self.output_shapes[k],
                         np.float32) for k in self.output_names]
        per_in = x.nbytes // n if self._batched else 0
        with self._lock:
            for c in range(chunks):
                if (c + 1) * B <= n:
                    xp = x.ctypes.data + c * B * per_in
                else:   # the last, partial chunk: zeros after the real images
                    pad = np.zeros(self.input_shape, np.float32)
                    pad[:n - c * B] = x[c * B:]
                    xp = pad.ctypes.data
                self._call(xp, [o.ctypes.data + c * (o.nbytes // chunks) for o in outs])
        if chunks * B != n:
            outs = [o[:n] for o in outs]
        if len(outs) == 1:
            return outs[0]
        return dict(zip(self.output_names, outs))

    # ------------------------------------------------------------ images
    def _image_fns(self):
        if not self.info.get("images"):
            raise Error("%s: compiled without image support (mambac was built without libjpeg/libpng): "
                        "pass arrays instead" % self.path)
        if len(self.input_shape) != 4 or self.input_shape[1] != 3:
            raise Error("%s: takes %s, not RGB images" % (self.path, _shape_text(self.input_shape)))
        f = self._sym("mambac_load_image")
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                      ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_size_t]
        return f

    def _load_into(self, f, path, dst, msg):
        w, h = ctypes.c_int(0), ctypes.c_int(0)
        if f(os.fsencode(path), dst.ctypes.data, ctypes.byref(w), ctypes.byref(h), msg, MSG_LEN):
            return None, msg.value.decode("utf-8", "replace") or "%s: cannot be read" % path
        return (w.value, h.value), None

    def try_load_images(self, paths):
        """Reads and preprocesses images, going on past bad ones.  Returns
        (x, sizes, good, errors): x float32 [len(good), 3, H, W] of the
        files read, sizes their (width, height) after EXIF orientation,
        good their paths, errors a list of (path, sentence)."""
        f = self._image_fns()
        H, W = self.input_shape[2], self.input_shape[3]
        paths = list(paths)
        x = np.empty((len(paths), 3, H, W), np.float32)
        msg = ctypes.create_string_buffer(MSG_LEN)
        sizes, good, errors = [], [], []
        for p in paths:
            size, err = self._load_into(f, p, x[len(good)], msg)
            if err is not None:
                errors.append((p, err))
                continue
            sizes.append(size)
            good.append(p)
        return x[:len(good)], sizes, good, errors

    def load_images(self, paths):
        """Reads and preprocesses images as the model's evaluation transform
        (resize, centre crop, normalize).  Returns (x, sizes): x float32
        [N, 3, H, W], sizes each image's (width, height).  Raises ImageError
        at the first file that cannot be read."""
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        x, sizes, good, errors = self.try_load_images(paths)
        if errors:
            raise ImageError(errors[0][1])
        return x, sizes

    # ------------------------------------------------------------ outputs
    def top(self, logits, k=5):
        """The k best classes of each row of logits ([N, classes], or one
        row [classes]) with softmax probabilities: per row a list of Top
        (index, name, prob), best first (a list of such lists for [N, ...])."""
        a = np.asarray(logits)
        if a.ndim not in (1, 2) or a.shape[-1] < 1:
            raise ShapeError("top() takes logits [N, classes] or [classes], not %s" % _shape_text(a.shape))
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError("k must be an integer >= 1, not %r" % (k,))
        rows = a.reshape(-1, a.shape[-1]).astype(np.float64)
        e = np.exp(rows - rows.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        names = self.classes
        k = min(int(k), rows.shape[1])
        res = []
        for r in range(rows.shape[0]):
            best = np.argsort(-rows[r], kind="stable")[:k]
            res.append([Top(int(i), names[i] if names and i < len(names) else None, float(p[r, i]))
                        for i in best])
        return res if a.ndim == 2 else res[0]

    def classmap(self, logits, sizes=None):
        """A segmentor's class maps: logits float32 [N, classes, H, W] (the
        model's output; or one image's [classes, H, W]), sizes each image's
        (width, height) as load_images gives them (None: the model's H x W).
        The logits are resized to each size as the model's head resizes
        (bilinear, its align_corners) and the best class taken per pixel.
        Returns a list of int32 [h0, w0] arrays (one array for one image)."""
        shape = self.output_shapes[self.output_names[0]]
        if self.kind != "segmentor" or len(self.output_names) != 1 or len(shape) != 4:
            raise Error("%s: classmap() is for a segmentor (one output [B, classes, H, W]); this model is "
                        "a %s" % (self.path, self.kind))
        a = logits
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            raise DTypeError("classmap() takes the model's float32 logits")
        one = a.ndim == 3
        if one:
            a = a[None]
        if a.ndim != 4 or tuple(a.shape[1:]) != shape[1:]:
            raise ShapeError("classmap() takes logits [N,%s], not %s" % (",".join(str(v) for v in shape[1:]),
                                                                     _shape_text(logits.shape)))
        a = np.ascontiguousarray(a)
        if sizes is None:
            sizes = [(shape[3], shape[2])] * a.shape[0]
        elif one and len(sizes) == 2 and all(isinstance(v, (int, np.integer)) for v in sizes):
            sizes = [sizes]
        sizes = list(sizes)
        if len(sizes) != a.shape[0]:
            raise ShapeError("classmap(): %d sizes for %d images" % (len(sizes), a.shape[0]))
        f = self._sym("mambac_classmap")
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
        maps = []
        for i, (w0, h0) in enumerate(sizes):
            if int(w0) < 1 or int(h0) < 1:
                raise ValueError("classmap(): image %d's size %dx%d" % (i, w0, h0))
            out = np.empty((int(h0), int(w0)), np.int32)
            if f(a[i].ctypes.data, int(w0), int(h0), out.ctypes.data):
                raise MemoryError("classmap(): out of memory for a %dx%d map" % (w0, h0))
            maps.append(out)
        return maps[0] if one else maps


def main(argv=None):
    """python3 mambac.py MODEL.so [IMAGE ...] [--top K] [--threads N]: the
    model's description (JSON), or the top-K classes of each image."""
    import argparse
    ap = argparse.ArgumentParser(prog="mambac.py", description=main.__doc__)
    ap.add_argument("model")
    ap.add_argument("images", nargs="*")
    ap.add_argument("--weights")
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        if not a.images:
            print(json.dumps(read_info(a.model), indent=1))
            return 0
        m = Model(a.model, weights=a.weights, threads=a.threads)
        x, sizes = m.load_images(a.images)
        for path, best in zip(a.images, m.top(m(x), a.top)):
            print(path)
            for j, b in enumerate(best):
                print("  %d. %s %.1f%%" % (j + 1, b.name if b.name is not None else "class %d" % b.index,
                                          100 * b.prob))
    except (Error, ValueError) as e:
        print("mambac.py: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
