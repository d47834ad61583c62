"""e2e: the ref backend runs Spatial-Mamba-T at 224x224, batch 1 in under
10 s on this class of machine (2 cores), and its logits are finite.

The time checked is the backend's own (mambac run -v prints it), so model
loading and random-weight generation are not counted."""
import re

import numpy as np

import e2e_common as E

t = E.Test("ref_speed")
x = E.image((1, 3, 224, 224), seed=77)
xin, yout = t.path("x.npy"), t.path("y.npy")
np.save(xin, x)
rc, out, err, dt = t.run(["run", E.config_for(t, "tiny")[0], "--input", xin, "--output", yout,
                          "--backend", "ref", "--threads", 2, "-v"], timeout=120)
m = re.search(r"ref backend ([0-9.]+) ms", err)
ms = float(m.group(1)) if m else float("inf")
t.check(rc == 0 and ms < 10000.0, "tiny 224x224 b1 on the ref backend: %.0f ms (limit 10000 ms; rc=%s)" % (ms, rc))
y = np.load(yout) if rc == 0 else None
t.check(y is not None and y.shape == (1, 1000) and np.isfinite(y).all(), "logits [1,1000], all finite")
t.finish()
