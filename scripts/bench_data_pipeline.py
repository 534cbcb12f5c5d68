#!/usr/bin/env python3
"""The PyTorch side of `album bench data`: a torchvision/PIL DataLoader doing the same
work as the Rust pipeline (decode, resize the short side, random crop, random
horizontal flip, to tensor, normalise) over the same files on the same cores.

    python scripts/bench_data_pipeline.py --files LIST --resize 64 --crop 56 --threads 2

LIST holds one image path per line. The files are read once first so the OS page cache
is warm, then the DataLoader (batch 64, `--threads` worker processes kept alive between
passes, torch limited to `--threads` threads) runs one untimed pass to start its
workers and `--repeats` timed passes; the best pass is reported. The last line printed
is machine-readable:

    RESULT images_per_s=<float> images=<int> best_s=<float> threads=<int>
"""

import argparse
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", required=True, help="text file, one image path per line")
    parser.add_argument("--resize", type=int, default=256, help="short side after resizing")
    parser.add_argument("--crop", type=int, default=224, help="side of the square crop")
    parser.add_argument("--threads", type=int, default=2, help="DataLoader workers and torch threads")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        import torch
        from PIL import Image
        from torch.utils.data import DataLoader, Dataset
        from torchvision import transforms
    except ImportError as error:
        print(f"NO_TORCH {error}", flush=True)
        return 3

    torch.set_num_threads(args.threads)
    with open(args.files, encoding="utf-8") as listing:
        paths = [line.rstrip("\n") for line in listing if line.strip()]
    for path in paths:  # warm the page cache, as the Rust side does
        with open(path, "rb") as f:
            f.read()

    transform = transforms.Compose(
        [
            transforms.Resize(args.resize),  # bilinear, antialiased, short side
            transforms.RandomCrop(args.crop),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )

    class Files(Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, index):
            with open(paths[index], "rb") as f:
                image = Image.open(f).convert("RGB")  # PIL decode, as torchvision's loader
            return transform(image), 0

    loader = DataLoader(
        Files(),
        batch_size=args.batch_size,
        shuffle=False,
        num_workers=args.threads,
        persistent_workers=args.threads > 0,
    )

    def one_pass():
        count = 0
        for images, _ in loader:
            count += images.shape[0]
        return count

    one_pass()  # start the workers; not timed
    best = float("inf")
    for _ in range(max(1, args.repeats)):
        start = time.perf_counter()
        count = one_pass()
        best = min(best, time.perf_counter() - start)
    print(
        f"RESULT images_per_s={count / best:.1f} images={count} best_s={best:.4f} threads={args.threads}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
