"""batchnormd: a client for the batchnormd server (PyTorch BatchNorm layers over HTTP).

    import batchnormd
    client = batchnormd.Client("http://127.0.0.1:8080")
    out = client.layer("bn1").train(x)

With torch importable, RemoteBatchNorm1d/2d/3d are here too.
"""
from .client import BatchnormdError, Client, Layer

__all__ = ["BatchnormdError", "Client", "Layer"]

try:
    from .remote import RemoteBatchNorm1d, RemoteBatchNorm2d, RemoteBatchNorm3d  # noqa: F401
    __all__ += ["RemoteBatchNorm1d", "RemoteBatchNorm2d", "RemoteBatchNorm3d"]
except ImportError:  # torch is optional
    pass
