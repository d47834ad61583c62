"""MessageHub and HistoryBuffer: classes with instance state (dicts, numpy
arrays, each other), the shape of what segmentation training checkpoints
pickle under 'message_hub'.  Used only by tests/reference/checkpoints.py: a
loader must skip them without importing them."""
import numpy as np


class HistoryBuffer:
    """The last values of one logged scalar and their counts."""

    def __init__(self, values=(), max_length=1000000):
        self.max_length = max_length
        self._log_history = np.asarray(values, dtype=np.float64)
        self._count_history = np.ones(len(self._log_history), dtype=np.int64)


class MessageHub:
    """Logged scalars (name -> HistoryBuffer) and runtime information."""

    def __init__(self, name, log_scalars, runtime_info):
        self.instance_name = name
        self.log_scalars = {k: HistoryBuffer(v) for k, v in log_scalars.items()}
        self.runtime_info = dict(runtime_info)
        self._resumed_keys = {k: True for k in runtime_info}
