#!/usr/bin/python3
"""The batchnormd Python client against a real daemon (its path is argv[1]).

A ResNet-style model built here (no downloads) is pushed in one request, trained
for a few steps with its BatchNorm layers remote (RemoteBatchNorm2d) beside a local
copy, and pulled back: outputs and every tensor of the state_dict must be equal bit
for bit (NCHW, where the server matches PyTorch). Then every method and every error
path of the client.
"""
import copy
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import batchnormd  # noqa: E402
from batchnormd import BatchnormdError  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:
    torch = None

EXE = None


class Daemon:
    """batchnormd on 127.0.0.1, any free port, a database in a temporary directory."""

    def __init__(self, *args):
        self.dir = tempfile.TemporaryDirectory(prefix="bnd-py-")
        self.proc = subprocess.Popen([EXE, "--listen", "127.0.0.1:0", "--db", os.path.join(self.dir.name, "l.db"),
                                      "--sync", "normal", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://[0-9.]+:[0-9]+", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("batchnormd did not start: %r" % line)
        self.url = m.group(0)
        for _ in range(300):
            try:
                if urllib.request.urlopen(self.url + "/readyz", timeout=5).status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("batchnormd never became ready")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0
        self.proc.stdout.close()
        self.dir.cleanup()


def setUpModule():
    global D
    D = Daemon()


def tearDownModule():
    D.stop()


if torch is not None:
    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))

    class ResNet(nn.Module):
        """ResNet-18's layout at a quarter of its width, two stages."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.layer1 = nn.Sequential(Block(16, 16, 1), Block(16, 16, 1))
            self.layer2 = nn.Sequential(Block(16, 32, 2), Block(32, 32, 1))
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(x.mean((2, 3)))


    def resnet18():
        """torchvision's resnet18 layout (no download, no torchvision): 20 BatchNorm layers, 11.7M parameters."""
        m = nn.Module()
        m.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        m.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, cout in enumerate([64, 128, 256, 512], 1):
            setattr(m, "layer%d" % i, nn.Sequential(Block(cin, cout, 1 if i == 1 else 2), Block(cout, cout, 1)))
            cin = cout
        m.fc = nn.Linear(512, 1000)
        return m


def swap_in_remote(model, client, prefix):
    """Replace every nn.BatchNorm2d of model by a RemoteBatchNorm2d of layer prefix + its name."""
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.BatchNorm2d):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], batchnormd.RemoteBatchNorm2d(client, prefix + name))


@unittest.skipIf(torch is None, "torch is not installed")
class TestResNet(unittest.TestCase):
    def test_push_train_pull_bit_for_bit(self):
        torch.manual_seed(0)
        local = ResNet()
        for mod in local.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.normal_()
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2)
                mod.num_batches_tracked.fill_(3)
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in local.modules())
        c = batchnormd.Client(D.url)
        t0 = time.monotonic()
        res = c.push_state_dict(local, prefix="r.")
        print("push_state_dict: %d layers in %.1f ms" % (res["created"], (time.monotonic() - t0) * 1e3))
        self.assertEqual(res["created"], n_bn)
        self.assertEqual(res["ignored_keys"], len(local.state_dict()) - 5 * n_bn)

        remote = copy.deepcopy(local)
        swap_in_remote(remote, c, "r.")
        self.assertFalse(any(isinstance(m, nn.BatchNorm2d) for m in remote.modules()))
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            local.train()
            remote.train()
            for step in range(4):
                x = torch.randn(4, 3, 16, 16, generator=gen) * 3 + 1
                a, b = local(x), remote(x)
                self.assertTrue(torch.equal(a, b), "train step %d: outputs differ by %g" % (step, (a - b).abs().max()))
            local.eval()
            remote.eval()
            x = torch.randn(2, 3, 16, 16, generator=gen)
            self.assertTrue(torch.equal(local(x), remote(x)), "eval outputs differ")

        t0 = time.monotonic()
        pulled = c.pull_state_dict("r.")
        print("pull_state_dict: %d tensors in %.1f ms" % (len(pulled), (time.monotonic() - t0) * 1e3))
        self.assertEqual(len(c.etags), n_bn)
        back = ResNet()
        back.load_state_dict({k: v for k, v in local.state_dict().items() if ".bn" not in k and "downsample.1" not in k
                              and not k.startswith("bn1.")}, strict=False)
        result = back.load_state_dict(pulled, strict=False)
        self.assertEqual(result.unexpected_keys, [])
        self.assertTrue(all(".bn" not in k and not k.startswith("bn1.") for k in result.missing_keys))
        same = [k for k, v in local.state_dict().items() if torch.equal(v, back.state_dict()[k])]
        print("pulled back: %d of %d tensors identical bit for bit (%d num_batches_tracked = %d)" % (
            len(same), len(local.state_dict()), n_bn, int(back.bn1.num_batches_tracked)))
        self.assertEqual(len(same), len(local.state_dict()))
        self.assertEqual(int(back.bn1.num_batches_tracked), 7)

        # The ETags from the pull guard a push: fine now, stale after one more remote step.
        self.assertEqual(c.push_state_dict(local, prefix="r.", mode="update", if_match=c.etags)["updated"], n_bn)
        with self.assertRaises(BatchnormdError) as e:
            c.push_state_dict(local, prefix="r.", mode="update", if_match=c.etags)
        self.assertEqual((e.exception.status, e.exception.code), (412, "precondition_failed"))

    def test_remote_module_checks_rank(self):
        c = batchnormd.Client(D.url)
        m = batchnormd.RemoteBatchNorm1d(c, "rank1d", num_features=3)
        with self.assertRaisesRegex(ValueError, "expected 2D or 3D input"):
            m(torch.zeros(2, 3, 4, 5))
        y = m(torch.arange(6.0).reshape(2, 3))
        self.assertTrue(torch.equal(y, nn.BatchNorm1d(3)(torch.arange(6.0).reshape(2, 3)).detach()))
        with self.assertRaisesRegex(ValueError, "expected 5D input"):
            batchnormd.RemoteBatchNorm3d(c, "rank1d")(torch.zeros(2, 3, 4))


@unittest.skipIf(torch is None, "torch is not installed")
class TestResNet18(unittest.TestCase):
    """The issue's acceptance: ResNet-18's 20 BatchNorm layers in one safetensors and one JSON request."""

    def test_import_export_load_state_dict(self):
        import json
        torch.manual_seed(2)
        model = resnet18()
        bn_keys = [k for k, v in model.state_dict().items()
                   if k.rsplit(".", 1)[0] in {n for n, mod in model.named_modules() if isinstance(mod, nn.BatchNorm2d)}]
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.data.normal_()
                mod.bias.data.normal_()
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.1, 3)
                mod.num_batches_tracked.fill_(11)
        sd = model.state_dict()
        c = batchnormd.Client(D.url)
        t0 = time.monotonic()
        res = c.push_state_dict(model, prefix="r18st.")
        t_st = time.monotonic() - t0
        body = json.dumps({k: (sd[k].item() if sd[k].dtype == torch.int64 else sd[k].tolist()) for k in bn_keys}).encode()
        t0 = time.monotonic()
        _, _, answer = c.request("POST", "/v1/import", body, "application/json", query={"prefix": "r18js."})
        t_js = time.monotonic() - t0
        res_js = json.loads(answer)
        print("ResNet-18: %d BatchNorm layers; safetensors import (%d keys, %d ignored) %.1f ms; "
              "JSON import (%d keys, %d bytes) %.1f ms" % (res["created"], len(sd), res["ignored_keys"], t_st * 1e3,
                                                             len(bn_keys), len(body), t_js * 1e3))
        self.assertEqual((res["created"], res_js["created"]), (20, 20))
        for prefix in ("r18st.", "r18js."):
            for form in ("safetensors", "json"):
                t0 = time.monotonic()
                if form == "safetensors":
                    pulled = c.pull_state_dict(prefix)
                else:
                    _, _, data = c.request("GET", "/v1/export", query={"prefix": prefix, "strip": "true"})
                    pulled = {k: torch.tensor(v, dtype=torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
                              for k, v in json.loads(data).items()}
                took = time.monotonic() - t0
                fresh = resnet18()
                result = fresh.load_state_dict(pulled, strict=False)
                self.assertEqual(result.unexpected_keys, [])
                same = sum(torch.equal(fresh.state_dict()[k], sd[k]) for k in bn_keys)
                print("  export %s as %s: %d keys in %.1f ms, load_state_dict(strict=False): %d of %d BatchNorm "
                      "tensors identical" % (prefix, form, len(pulled), took * 1e3, same, len(bn_keys)))
                self.assertEqual(same, len(bn_keys))


class TestLayer(unittest.TestCase):
    def test_methods(self):
        c = batchnormd.Client(D.url)
        bn = c.layer("m1")
        self.assertEqual(bn.create(num_features=2, momentum=None)["config"]["momentum"], None)
        x = np.array([[0.0, 1.0], [2.0, 5.0], [4.0, -1.0]])  # float64: sent as <f8
        out = bn.train(x)
        self.assertEqual(sorted(out), ["batch_mean", "batch_var", "num_batches_tracked", "output",
                                       "running_mean", "running_var"])
        self.assertEqual(out["output"].dtype, np.float32)
        self.assertEqual(int(out["num_batches_tracked"]), 1)
        np.testing.assert_array_equal(out["batch_mean"], np.float32([2.0, 5.0 / 3.0]))
        self.assertTrue(bn.etag)
        big = bn.eval(x.astype(">f2"))
        np.testing.assert_array_equal(big, bn.eval(x.astype("<f4")))
        st = bn.state()
        np.testing.assert_array_equal(st["running_mean"], out["running_mean"])
        bn.load_state({"running_mean": np.float32([0.5, 0.25]), "num_batches_tracked": 4})
        self.assertEqual(bn.state()["num_batches_tracked"], 4)
        self.assertEqual(len(bn.history()["steps"]), 1)
        self.assertEqual(bn.patch(eps=0.5)["config"]["eps"], 0.5)
        self.assertEqual(bn.reset()["num_batches_tracked"], 0)
        self.assertIn("m1", [layer["name"] for layer in c.layers()])
        bn.delete(if_match=True)
        self.assertNotIn("m1", [layer["name"] for layer in c.layers()])

    def test_calibration(self):
        c = batchnormd.Client(D.url)
        bn = c.layer("cal1")
        bn.create(num_features=1, affine=False)
        for _ in range(3):
            cal = bn.calibrate(np.float64([[[[0.0, 1.0]]]]))
        self.assertEqual((cal["count"], cal["batches"]), (6, 3))
        self.assertEqual(bn.calibrate(count=2, mean=[0.5], var=[0.25])["batches"], 4)
        self.assertEqual(bn.calibration()["count"], 8)
        state = bn.commit_calibration("batch_average")
        self.assertEqual((state["running_var"], state["num_batches_tracked"]), ([0.5], 4))
        with self.assertRaises(BatchnormdError) as e:
            bn.calibration()
        self.assertEqual(e.exception.code, "no_calibration")
        self.assertEqual(set(bn.folded()), {"scale", "shift"})

    def test_pull_numpy_and_json_state_dict(self):
        c = batchnormd.Client(D.url)
        sd = {"a.running_mean": [1.0, 2.0], "a.running_var": np.float64([3.0, 4.0]),
              "a.num_batches_tracked": np.int64(5), "a.weight": np.float16([1, 2]), "a.bias": np.float32([0, 1])}
        self.assertEqual(c.push_state_dict(sd, prefix="np.")["created"], 1)
        back = c.pull_state_dict("np.", as_torch=False)
        self.assertEqual(back["a.weight"].dtype, np.float32)
        np.testing.assert_array_equal(back["a.running_var"], np.float32([3, 4]))
        self.assertEqual(int(back["a.num_batches_tracked"]), 5)
        self.assertEqual(set(c.pull_state_dict("np.", strip=False, as_torch=False)),
                         {"np.a." + k for k in ("weight", "bias", "running_mean", "running_var",
                                                "num_batches_tracked")})


@unittest.skipIf(torch is None, "torch is not installed")
class TestReadme(unittest.TestCase):
    def test_readme_session_runs(self):
        """The README's Python session, as written, against this daemon."""
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "README.md")) as f:
            readme = f.read()
        block = readme.split("```python\n", 1)[1].split("```", 1)[0]
        print("README Python session: %d lines" % len(block.splitlines()))
        self.assertEqual(len(block.splitlines()), 5)
        scope = {}
        exec(block.replace("http://127.0.0.1:8080", D.url), scope)
        model = scope["model"]
        with torch.no_grad():
            y = model(torch.randn(4, 3, 8, 8))
        self.assertEqual(tuple(y.shape), (4, 8, 6, 6))
        self.assertEqual(int(batchnormd.Client(D.url).layer("net.1").state()["num_batches_tracked"]), 1)


class TestErrors(unittest.TestCase):
    """Every way the client fails raises BatchnormdError with the server's status, code and detail."""

    def expect(self, status, code, fn, *args, **kw):
        with self.assertRaises(BatchnormdError) as e:
            fn(*args, **kw)
        err = e.exception
        self.assertEqual((err.status, err.code), (status, code), str(err))
        self.assertTrue(err.detail)
        return err

    def test_errors(self):
        c = batchnormd.Client(D.url)
        bn = c.layer("e1")
        self.expect(404, "not_found", bn.get)
        self.expect(404, "not_found", bn.train, np.zeros((2, 2)))
        bn.create(num_features=2)
        self.expect(409, "conflict", bn.create, num_features=3)
        err = self.expect(422, "wrong_channels", bn.train, np.zeros((2, 3)))
        self.assertIn("expected 2 channels", err.detail)
        self.expect(422, "too_few_values", bn.train, np.zeros((1, 2)))
        self.expect(422, "out_of_range", bn.eval, np.float64([[1e39, 0], [0, 0]]))
        self.expect(422, "not_finite", bn.eval, np.float32([[np.nan, 0], [0, 0]]))
        self.expect(412, "precondition_failed", bn.reset, if_match='"0-0"')
        self.expect(400, "invalid_name", c.layer("-starts-with-a-dash").get)
        self.expect(422, "unknown_key", bn.load_state, {"nope": [1, 2]})
        self.expect(409, "conflict", c.push_state_dict, {"e1.running_mean": [0, 0], "e1.running_var": [1, 1]})
        self.expect(400, "invalid_query", c.push_state_dict, {}, mode="merge")
        self.expect(422, "invalid_state", c.push_state_dict, {"x.running_mean": [0.0], "x.running_var": [-1.0]})
        with self.assertRaises(TypeError):
            c.push_state_dict({"x.running_mean": np.complex64([1])})

    def test_unreachable(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        err = self.expect(0, "connection_error", batchnormd.Client("http://127.0.0.1:%d" % port, timeout=5).layers)
        self.assertIn("cannot reach", err.detail)

    def test_token(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write("s3cret-token-42\n")
        d = Daemon("--token-file", f.name)
        try:
            self.expect(401, "unauthorized", batchnormd.Client(d.url).layer("t").create, num_features=1)
            self.expect(401, "unauthorized", batchnormd.Client(d.url, token="wrong").push_state_dict, {})
            self.assertEqual(batchnormd.Client(d.url, token="s3cret-token-42").layer("t").create(num_features=1)["name"], "t")
        finally:
            d.stop()
            os.unlink(f.name)


if __name__ == "__main__":
    EXE = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else os.environ.get("BATCHNORMD")
    if not EXE:
        sys.exit("usage: test_client.py BATCHNORMD")
    unittest.main(verbosity=2)
