"""Datasets by name, all offline: ``digits``, ``fashion-mnist``, ``cifar10:PATH``,
``cifar100:PATH``, ``imagefolder:PATH``.

A :class:`DatasetBundle` keeps both splits in memory as uint8 N×C×H×W tensors
plus a :class:`Transform` (augmentation + normalisation), and iterates
batches deterministically: the order of epoch ``e`` is that of
``DistributedSampler(seed=seed).set_epoch(e)`` (so it is the same whether a
run was resumed or not, and shards cleanly across ranks), and the
augmentation draws from a generator seeded with (seed, epoch, rank).

Per dataset:

- ``digits``: scikit-learn's bundled 8×8 digits (1,797 images, 10 classes), kept at
  8×8 (no upsampling: it is the tiny always-available default for tests and
  smoke runs); split 1,437 train / 360 test with a fixed permutation; pad 1 +
  random 8×8 crop, no flip (mirrored digits are different symbols).
- ``fashion-mnist``: IDX ``.gz`` files from ``--data-dir`` or
  ``/usr/share/datasets/fashion-mnist`` (Debian ``dataset-fashion-mnist``); 28×28,
  pad 2 + random crop + horizontal flip (garment classes are mirror-symmetric:
  no class is defined by handedness, so a flip keeps the label).
- ``cifar10:PATH`` / ``cifar100:PATH``: the python batches; 32×32, pad 4 + random crop + flip.
- ``imagefolder:PATH``: ``PATH/train/<class>/*`` and ``PATH/val/<class>/*``, read with
  PIL, shorter side resized to ``ceil(input_size·8/7)`` and centre-cropped square once
  at load; train takes a random ``input_size`` crop + flip, test the centre crop.
  Everything is held in memory, so this is for small image folders.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler, TensorDataset

from perfstudent.distill import formats
from perfstudent.distill.transforms import Transform
from perfstudent.errors import InputError

FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
DATASET_NAMES = ("digits", "fashion-mnist", "cifar10:PATH", "cifar100:PATH", "imagefolder:PATH")


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 N×C×H×W, ``labels`` int64 N."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, limit: int | None, seed: int) -> Split:
        """A deterministic random subset of ``limit`` items (all of them when None or larger)."""
        if limit is None or limit >= len(self):
            return self
        if limit < 1:
            raise InputError(f"a dataset limit must be at least 1, got {limit}")
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=gen)[:limit].sort().values
        return Split(self.images[idx], self.labels[idx])


@dataclass(frozen=True)
class DatasetBundle:
    """Both splits of a dataset, its shape and its transform."""

    name: str
    train: Split
    test: Split
    in_channels: int
    num_classes: int
    input_size: int
    transform: Transform

    def batches(self, split: str, batch_size: int, *, augment: bool | None = None,
                shuffle: bool | None = None, seed: int = 0, epoch: int = 0, rank: int = 0,
                world_size: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised float batches ``(x, y)`` of ``split`` ("train" or "test") for one rank.

        Train defaults to shuffled and augmented, test to neither. With
        ``world_size > 1`` each rank gets its DistributedSampler shard (padded
        to equal length by repeating items, as DistributedSampler does).
        """
        data = self.train if split == "train" else self.test
        training = split == "train"
        indices = self.order(split, shuffle=training if shuffle is None else shuffle, seed=seed,
                             epoch=epoch, rank=rank, world_size=world_size)
        gen = torch.Generator().manual_seed(_mix(seed, epoch, rank))
        for start in range(0, len(indices), batch_size):
            idx = indices[start:start + batch_size]
            x = self.transform(data.images[idx], training if augment is None else augment, gen)
            yield x, data.labels[idx]

    def order(self, split: str, *, shuffle: bool, seed: int, epoch: int, rank: int = 0,
              world_size: int = 1) -> torch.Tensor:
        """Item indices of one epoch for one rank (DistributedSampler semantics)."""
        data = self.train if split == "train" else self.test
        if not shuffle:  # evaluation: a plain strided shard, no padding, every item once
            return torch.arange(len(data))[rank::world_size]
        sampler: DistributedSampler[tuple[torch.Tensor, ...]] = DistributedSampler(
            TensorDataset(data.labels), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
        return torch.tensor(list(sampler), dtype=torch.int64)

    def num_batches(self, split: str, batch_size: int, world_size: int = 1) -> int:
        n = len(self.train if split == "train" else self.test)
        return math.ceil(math.ceil(n / world_size) / batch_size)


def _mix(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**63 - 1)


def load_dataset(name: str, data_dir: Path | str | None = None, seed: int = 0,
                 train_limit: int | None = None, test_limit: int | None = None,
                 input_size: int | None = None) -> DatasetBundle:
    """Load a dataset by name (see the module docstring); ``*_limit`` take deterministic subsets.

    ``seed`` only chooses the subsets (the trainer passes 0, so every run with the
    same limits sees the same images). ``input_size`` applies to ``imagefolder`` (default 32).
    """
    kind, _, arg = name.partition(":")
    path = Path(arg).expanduser() if arg else (Path(data_dir) if data_dir else None)
    if kind == "digits":
        bundle = _digits()
    elif kind == "fashion-mnist":
        bundle = _fashion_mnist(path)
    elif kind in ("cifar10", "cifar100"):
        bundle = _cifar(kind, _need_path(kind, path))
    elif kind == "imagefolder":
        bundle = _image_folder(_need_path(kind, path), input_size or 32)
    else:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    return DatasetBundle(name, bundle.train.subset(train_limit, seed), bundle.test.subset(test_limit, seed),
                         bundle.in_channels, bundle.num_classes, bundle.input_size, bundle.transform)


def _need_path(kind: str, path: Path | None) -> Path:
    if path is None:
        raise InputError(f"dataset {kind} needs a path: --data {kind}:PATH (or --data-dir PATH)")
    if not path.exists():
        raise InputError(f"{kind}: {path} does not exist")
    return path


def _digits() -> DatasetBundle:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(digits.target).long()
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = len(labels) // 5
    test, train = perm[:n_test].sort().values, perm[n_test:].sort().values
    transform = Transform(mean=(0.305,), std=(0.377,), crop=8, pad=1, flip=False)
    return DatasetBundle("digits", Split(images[train], labels[train]), Split(images[test], labels[test]),
                         1, 10, 8, transform)


def _fashion_mnist(path: Path | None) -> DatasetBundle:
    names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    dirs = [path] if path is not None else list(FASHION_MNIST_DIRS)
    found = next((d for d in dirs if _idx_file(d, names["test"][0])), None)
    if found is None:
        raise InputError(f"fashion-mnist: no IDX files (train-images-idx3-ubyte[.gz], ...) in "
                         f"{', '.join(map(str, dirs))}; install Debian's dataset-fashion-mnist "
                         "or pass --data-dir")
    splits = {}
    for split, (img, lab) in names.items():
        img_path, lab_path = _idx_file(found, img), _idx_file(found, lab)
        if img_path is None or lab_path is None:
            raise InputError(f"fashion-mnist: {found} lacks {img if img_path is None else lab}[.gz]")
        splits[split] = Split(*formats.read_idx_pair(img_path, lab_path))
    size = splits["train"].images.shape[-1]
    transform = Transform(mean=(0.2860,), std=(0.3530,), crop=size, pad=2, flip=True)
    return DatasetBundle("fashion-mnist", splits["train"], splits["test"], 1, 10, size, transform)


def _idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _cifar(kind: str, path: Path) -> DatasetBundle:
    (xtr, ytr), (xte, yte), classes = formats.read_cifar(path, kind)
    if kind == "cifar10":
        mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    else:
        mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    _check_labels(kind, path, ytr, yte, classes)
    return DatasetBundle(kind, Split(xtr, ytr), Split(xte, yte), 3, classes, 32,
                         Transform(mean=mean, std=std, crop=32, pad=4, flip=True))


def _image_folder(path: Path, input_size: int) -> DatasetBundle:
    classes = formats.folder_classes(path / "train")
    val_classes = formats.folder_classes(path / "val")
    if val_classes != classes:
        raise InputError(f"imagefolder: {path}/train and {path}/val have different class folders")
    stored = math.ceil(input_size * 8 / 7)
    train = Split(*formats.read_image_folder(path / "train", classes, stored))
    test = Split(*formats.read_image_folder(path / "val", classes, stored))
    transform = Transform(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop=input_size,
                          pad=0, flip=True)
    return DatasetBundle("imagefolder", train, test, 3, len(classes), input_size, transform)


def _check_labels(kind: str, path: Path, ytr: torch.Tensor, yte: torch.Tensor, classes: int) -> None:
    for y in (ytr, yte):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise InputError(f"{kind}: labels in {path} are outside 0..{classes - 1}")
