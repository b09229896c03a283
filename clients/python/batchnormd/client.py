"""Client and Layer: batchnormd's HTTP API from Python (standard library and NumPy)."""
import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from . import _wire

_UNSET = object()


class BatchnormdError(Exception):
    """Any failure: the server's RFC 9457 problem (status, code, detail), or status 0 when unreachable."""

    def __init__(self, status, code, detail, title=None):
        super().__init__("%s %s: %s" % (status, code, detail))
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title


class Client:
    """A batchnormd server at url; token: the bearer token for changes, when it has one."""

    def __init__(self, url, token=None, timeout=30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.etags = {}  # layer name -> ETag, from the last pull_state_dict

    def request(self, method, path, body=None, content_type=None, accept=None, headers=None,
                query=None):
        """Send one request; returns (status, headers, body bytes). Raises BatchnormdError for >= 400."""
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        h = dict(headers or {})
        if content_type:
            h["Content-Type"] = content_type
        if accept:
            h["Accept"] = accept
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            raise _problem(e) from None
        except (urllib.error.URLError, OSError) as e:
            raise BatchnormdError(0, "connection_error", "cannot reach %s: %s" % (self.url, e)) from None

    def json(self, method, path, doc=_UNSET, **kw):
        body = None if doc is _UNSET else json.dumps(doc).encode()
        status, headers, data = self.request(method, path, body, "application/json" if body else None, **kw)
        return json.loads(data) if data else None, headers

    def layer(self, name):
        return Layer(self, name)

    def layers(self):
        return self.json("GET", "/v1/layers")[0]["layers"]

    def push_state_dict(self, model_or_sd, prefix="", mode="create", if_match=None, eps=None,
                        momentum=_UNSET):
        """
        Every BatchNorm layer of a model (or a state_dict) in one safetensors request, as layers
        named prefix + their key's prefix. mode: create, replace or update. if_match: ETags (a
        dict or a list; e.g. client.etags after pull_state_dict) the layers must still have.
        Returns the server's answer: created, updated, ignored_keys and each layer's ETag.
        """
        sd = model_or_sd.state_dict() if hasattr(model_or_sd, "state_dict") else model_or_sd
        tensors = {}
        for k, v in sd.items():
            if isinstance(v, (list, tuple, float)):
                v = np.asarray(v, dtype=np.float64)  # the server rounds to float32, as it does JSON
            elif isinstance(v, int):
                v = np.int64(v)
            if hasattr(v, "shape"):
                tensors[k] = v
        query = {"prefix": prefix, "mode": mode, "eps": eps}
        if momentum is not _UNSET:
            query["momentum"] = "null" if momentum is None else momentum
        headers = {}
        if if_match:
            tags = if_match.values() if isinstance(if_match, dict) else if_match
            headers["If-Match"] = ", ".join(tags)
        _, _, data = self.request("POST", "/v1/import", _wire.safetensors_bytes(tensors),
                                  "application/octet-stream", headers=headers, query=query)
        return json.loads(data)

    def pull_state_dict(self, prefix="", strip=True, as_torch=None):
        """
        The layers under prefix as one state_dict (keys less the prefix when strip), as torch
        tensors when torch is importable (as_torch None) or asked for, else NumPy arrays; ready
        for model.load_state_dict(sd, strict=False). Each layer's ETag goes to self.etags.
        """
        _, _, data = self.request("GET", "/v1/export", accept="application/octet-stream",
                                  query={"prefix": prefix, "strip": "true" if strip else "false"})
        arrays, metadata = _wire.safetensors_load(data)
        self.etags = dict(metadata)
        if as_torch is None:
            try:
                import torch  # noqa: F401
                as_torch = True
            except ImportError:
                as_torch = False
        if as_torch:
            import torch
            return {k: torch.from_numpy(v) for k, v in arrays.items()}
        return arrays


def _problem(e):
    data = e.read()
    try:
        doc = json.loads(data)
        return BatchnormdError(doc.get("status", e.code), doc.get("code", "unknown"), doc.get("detail", ""),
                               doc.get("title"))
    except ValueError:
        return BatchnormdError(e.code, "unknown", data.decode("utf-8", "replace")[:200])


class Layer:
    """One named layer. Every change sends If-Match when given if_match=True (the last ETag seen) or a tag."""

    def __init__(self, client, name):
        self.client = client
        self.name = name
        self.path = "/v1/layers/" + urllib.parse.quote(name, safe="")
        self.etag = None

    def _headers(self, if_match):
        if if_match is True:
            if_match = self.etag
        return {"If-Match": if_match} if if_match else {}

    def _json(self, method, suffix="", doc=_UNSET, if_match=None, **kw):
        out, headers = self.client.json(method, self.path + suffix, doc, headers=self._headers(if_match), **kw)
        self.etag = headers.get("ETag", self.etag)
        return out

    def create(self, config=None, **fields):
        """PUT the config (a dict, or num_features=..., eps=..., ...); returns the layer."""
        return self._json("PUT", "", dict(config or {}, **fields))

    def get(self):
        return self._json("GET")

    def state(self):
        """The state_dict, arrays as float32 NumPy arrays."""
        sd = self._json("GET", "/state")
        return {k: (np.asarray(v, dtype=np.float32) if isinstance(v, list) else v) for k, v in sd.items()}

    def load_state(self, sd, if_match=None):
        """Load any subset of the state_dict (arrays, tensors or lists)."""
        doc = {k: (int(v) if k == "num_batches_tracked" else np.asarray(_numpy(v), dtype=np.float64).tolist())
               for k, v in sd.items()}
        return self._json("PUT", "/state", doc, if_match=if_match)

    def reset(self, if_match=None):
        return self._json("POST", "/reset", if_match=if_match)

    def patch(self, if_match=None, **fields):
        return self._json("PATCH", "", fields, if_match=if_match)

    def delete(self, if_match=None):
        self.client.request("DELETE", self.path, headers=self._headers(if_match))

    def history(self, after=0, limit=100):
        return self._json("GET", "/history", query={"after": after, "limit": limit})

    def calibrate(self, x=None, count=None, mean=None, var=None):
        """Add a batch to the layer's calibration (precise BN): a tensor x, or a worker's summary
        (count, mean, biased var). Returns the calibration."""
        if x is not None:
            status, headers, data = self.client.request("POST", self.path + "/calibration",
                                                        _wire.npy_bytes(_numpy(x)), "application/x-npy")
            return json.loads(data)
        return self._json("POST", "/calibration", {"count": int(count), "mean": np.asarray(mean, dtype=np.float64).tolist(),
                                                   "var": np.asarray(var, dtype=np.float64).tolist()})

    def calibration(self):
        return self._json("GET", "/calibration")

    def commit_calibration(self, variance="population", if_match=None):
        """Write the running stats from the calibration ("population" or "batch_average") and close it."""
        return self._json("POST", "/calibration/commit", {"variance": variance}, if_match=if_match)

    def discard_calibration(self):
        self.client.request("DELETE", self.path + "/calibration")

    def folded(self):
        """Eval mode as one affine map: {"scale": [C], "shift": [C]}."""
        return self._json("GET", "/folded")

    def train(self, x, if_match=None):
        """One train step on x: a dict of NumPy arrays, output, batch_mean, batch_var and, when tracked,
        running_mean, running_var, num_batches_tracked."""
        status, headers, data = self.client.request("POST", self.path + "/train", _wire.npy_bytes(_numpy(x)),
                                                    "application/x-npy", "application/x-npz",
                                                    self._headers(if_match))
        self.etag = headers.get("ETag", self.etag)
        return _wire.npz_load(data)

    def eval(self, x):
        """The eval forward of x, a float32 NumPy array of its shape."""
        status, headers, data = self.client.request("POST", self.path + "/eval", _wire.npy_bytes(_numpy(x)),
                                                    "application/x-npy", "application/x-npy")
        self.etag = headers.get("ETag", self.etag)
        return _wire.npy_load(data)


def _numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
