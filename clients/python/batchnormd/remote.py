"""RemoteBatchNorm1d/2d/3d: nn.Module stand-ins whose state lives in batchnormd."""
import torch
from torch import nn

from .client import BatchnormdError


class _RemoteBatchNorm(nn.Module):
    _dims = ()
    _kind = ""

    def __init__(self, client, name, num_features=None, **config):
        """Use layer name; with num_features, create it (or accept it as it is, 200) with this config."""
        super().__init__()
        self.layer = client.layer(name)
        if num_features is not None:
            self.layer.create(num_features=num_features, **config)

    def forward(self, x):
        if x.dim() not in self._dims:
            raise ValueError("expected %s input (got %dD input)" % (" or ".join("%dD" % d for d in self._dims),
                                                                    x.dim()))
        if self.training:
            y = self.layer.train(x)["output"]
        else:
            y = self.layer.eval(x)
        return torch.from_numpy(y).to(x.device)

    def extra_repr(self):
        return "name=%r" % self.layer.name


class RemoteBatchNorm1d(_RemoteBatchNorm):
    _dims = (2, 3)


class RemoteBatchNorm2d(_RemoteBatchNorm):
    _dims = (4,)


class RemoteBatchNorm3d(_RemoteBatchNorm):
    _dims = (5,)


__all__ = ["RemoteBatchNorm1d", "RemoteBatchNorm2d", "RemoteBatchNorm3d", "BatchnormdError"]
