"""CfgNode: a dict subclass with attribute access and instance state, the
shape of the config objects that training checkpoints pickle.  Used only by
tests/reference/checkpoints.py: a loader must skip it without importing it."""


class CfgNode(dict):
    IMMUTABLE = "__immutable__"

    def __init__(self, init=None, new_allowed=False):
        super().__init__(init or {})
        for k, v in list(self.items()):
            if isinstance(v, dict) and not isinstance(v, CfgNode):
                self[k] = CfgNode(v)
        self.__dict__[CfgNode.IMMUTABLE] = False
        self.__dict__["__new_allowed__"] = new_allowed

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

    def __setattr__(self, name, value):
        self[name] = value

    def freeze(self):
        self.__dict__[CfgNode.IMMUTABLE] = True
        for v in self.values():
            if isinstance(v, CfgNode):
                v.freeze()
        return self
