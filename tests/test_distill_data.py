"""Datasets: every format written small in a temp dir and loaded; errors; determinism."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from perfstudent.distill.data import FASHION_MNIST_DIRS, load_dataset
from perfstudent.errors import InputError


def _write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def _fmnist_dir(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    return root


def test_digits_is_the_always_available_default() -> None:
    d = load_dataset("digits")
    assert (d.in_channels, d.num_classes, d.input_size) == (1, 10, 8)
    assert len(d.train) + len(d.test) == 1797 and len(d.test) == 359
    x, y = next(d.batches("test", 400))
    assert x.shape == (359, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1  # normalised


def test_limits_are_deterministic_subsets() -> None:
    a = load_dataset("digits", train_limit=100, test_limit=50)
    b = load_dataset("digits", train_limit=100, test_limit=50)
    assert len(a.train) == 100 and len(a.test) == 50
    assert torch.equal(a.train.labels, b.train.labels) and torch.equal(a.train.images, b.train.images)
    with pytest.raises(InputError, match="at least 1"):
        load_dataset("digits", train_limit=0)


def test_augmentation_and_order_are_seeded() -> None:
    d = load_dataset("digits", train_limit=64)
    run = lambda seed, epoch: [x for x, _ in d.batches("train", 32, seed=seed, epoch=epoch)]  # noqa: E731
    assert all(torch.equal(p, q) for p, q in zip(run(1, 0), run(1, 0), strict=True))
    assert not torch.equal(run(1, 0)[0], run(2, 0)[0])
    assert not torch.equal(run(1, 0)[0], run(1, 1)[0])


def test_ranks_shard_the_data() -> None:
    d = load_dataset("digits", train_limit=10, test_limit=7)
    orders = [d.order("train", shuffle=True, seed=0, epoch=0, rank=r, world_size=2) for r in (0, 1)]
    assert sorted(torch.cat(orders).tolist()) == list(range(10))
    tests = [d.order("test", shuffle=False, seed=0, epoch=0, rank=r, world_size=2) for r in (0, 1)]
    assert sorted(torch.cat(tests).tolist()) == list(range(7))  # every test item exactly once


def test_fashion_mnist_from_data_dir(tmp_path: Path) -> None:
    root = _fmnist_dir(tmp_path / "fm")
    d = load_dataset("fashion-mnist", data_dir=root)
    assert (len(d.train), len(d.test), d.input_size, d.in_channels) == (20, 10, 28, 1)
    x, _ = next(d.batches("train", 8, seed=0))
    assert x.shape == (8, 1, 28, 28)
    d2 = load_dataset(f"fashion-mnist:{root}")
    assert torch.equal(d2.train.images, d.train.images)


@pytest.mark.skipif(not any((p / "t10k-images-idx3-ubyte.gz").is_file() for p in FASHION_MNIST_DIRS),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_found_automatically() -> None:
    d = load_dataset("fashion-mnist", test_limit=100, train_limit=100)
    assert len(d.test) == 100 and d.train.images.shape[1:] == (1, 28, 28)


def test_fashion_mnist_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no IDX files .* in .*empty"):
        (tmp_path / "empty").mkdir()
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty")
    root = _fmnist_dir(tmp_path / "bad")
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x03garbage"))
    with pytest.raises(InputError, match="not an IDX uint8 file"):
        load_dataset("fashion-mnist", data_dir=root)


def _cifar_batch(n: int, label_key: bytes, classes: int, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"test", label_key: rng.integers(0, classes, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * n}


def test_cifar10_python_batches(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(_cifar_batch(4, b"labels", 10, i), protocol=2))
    (root / "test_batch").write_bytes(pickle.dumps(_cifar_batch(3, b"labels", 10, 9), protocol=2))
    d = load_dataset(f"cifar10:{tmp_path}")  # the parent directory works too
    assert (len(d.train), len(d.test), d.in_channels, d.num_classes, d.input_size) == (20, 3, 3, 10, 32)
    first = _cifar_batch(4, b"labels", 10, 1)
    assert torch.equal(d.train.images[0], torch.from_numpy(first[b"data"][0].reshape(3, 32, 32)))  # type: ignore[index]
    x, _ = next(d.batches("train", 20, seed=0))
    assert x.shape == (20, 3, 32, 32)


def test_cifar100_python_batches(tmp_path: Path) -> None:
    (tmp_path / "train").write_bytes(pickle.dumps(_cifar_batch(6, b"fine_labels", 100, 1)))
    (tmp_path / "test").write_bytes(pickle.dumps(_cifar_batch(2, b"fine_labels", 100, 2)))
    d = load_dataset(f"cifar100:{tmp_path}")
    assert (len(d.train), len(d.test), d.num_classes) == (6, 2, 100)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_cifar_malicious_pickle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train").write_bytes(pickle.dumps({b"data": _Evil(), b"fine_labels": [0]}))
    (tmp_path / "test").write_bytes(pickle.dumps(_cifar_batch(2, b"fine_labels", 100, 2)))
    with pytest.raises(InputError, match=r"refusing to load (posix|os)\.system"):
        load_dataset(f"cifar100:{tmp_path}")
    assert not (Path.cwd() / "pwned").exists()


def test_cifar_missing_files_say_where_and_what(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"looked in .*\(data_batch_1.*missing"):
        load_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(f"cifar10:{tmp_path / 'nope'}")
    with pytest.raises(InputError, match="needs a path"):
        load_dataset("cifar10")


def test_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / split / cls / f"{i}.png")
    d = load_dataset(f"imagefolder:{tmp_path}", input_size=16)
    assert (len(d.train), len(d.test), d.num_classes, d.input_size, d.in_channels) == (6, 4, 2, 16, 3)
    assert d.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    x, _ = next(d.batches("train", 6, seed=0))
    xt, _ = next(d.batches("test", 6))
    assert x.shape == (6, 3, 16, 16) and xt.shape == (4, 3, 16, 16)
    (tmp_path / "val" / "dog" / "0.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_imagefolder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"train.*is not a directory.*expected PATH/train/<class>"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_unknown_dataset() -> None:
    with pytest.raises(InputError, match="unknown dataset 'mnistish'; known: digits"):
        load_dataset("mnistish")
