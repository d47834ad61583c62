"""A stand-in for a foreign config class (like yacs.config.CfgNode): a dict
subclass with attributes, pickled into the training-layout fixture so the
reader must skip an object of a class it has never heard of.  MyTensor is a
Tensor subclass (saved through torch._tensor._rebuild_from_type_v2)."""
import torch


class CfgNode(dict):
    def __init__(self, init=None, new_allowed=False):
        super().__init__(init or {})
        self.__dict__["_frozen"] = False
        self.__dict__["_new_allowed"] = new_allowed

    def __getattr__(self, k):
        return self[k]


class Scheduler:
    def __init__(self):
        self.t_initial = 300
        self.warmup = [1e-6, 0.5]


class MyTensor(torch.Tensor):
    pass
