"""What do the ResNet variants of chapter 07 cost in time? (chapter 07)

Prints, measured in one run on CPU (and on CUDA when present):

* stochastic depth: the time of one training step (forward + backward + SGD) of a pre-act ResNet
  with ``p_L = 0.5`` (batch mode: dropped branches are not computed) over the same net without it,
  averaged over many steps, next to the expected fraction of branches computed, ``(3L − 1)/(4L)``;
* SE: inference latency with an SE module on every unit over the same net without (``measure.latency``);
* ResNeXt: inference latency of form (a) (C separate paths) and form (b) over form (c) (one grouped
  conv) for the same block — equal MACs, very different speed.

    python benchmarks/resnet_variants.py [--depth 56] [--steps 20] [--threads N]

Nothing is asserted: the ratios depend on the machine.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from course_lib import measure, resnets


def step_time(model, x, y, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for i in range(steps + 2):
        if i == 2:                                   # two warm-up steps
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=56)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    units = 3 * (args.depth - 2) // 6
    for dev in devices:
        print(f"--- {dev} (threads={torch.get_num_threads()}), ResNet-{args.depth}, batch {args.batch}")
        x = torch.randn(args.batch, 3, 32, 32, device=dev)
        y = torch.randint(0, 10, (args.batch,), device=dev)
        times = {}
        for label, p_last in (("without", None), ("with", 0.5)):
            torch.manual_seed(0)
            net = resnets.resnet_cifar(args.depth, preact=True, p_last=p_last).to(dev)
            times[label] = step_time(net, x, y, args.steps)
        print(f"stochastic depth: {1e3 * times['without']:.1f} → {1e3 * times['with']:.1f} ms per training step = "
              f"{times['with'] / times['without']:.2f}× (branches computed: "
              f"{resnets.expected_depth(units) / units:.2f}× on average)")
        x1 = torch.randn(1, 3, 32, 32, device=dev)
        lat = {}
        for label, se in (("plain", False), ("se", True)):
            torch.manual_seed(0)
            lat[label] = measure.latency(resnets.resnet_cifar(args.depth, preact=True, se=se, reduction=4).to(dev), x1)
        print(f"SE (r=4) inference, 1 image: {1e3 * lat['plain']:.2f} → {1e3 * lat['se']:.2f} ms = {lat['se'] / lat['plain']:.2f}×")
        block = resnets.ResNeXtBlock(256, 32, 128, form="c").to(dev).eval()
        xb = torch.randn(8, 256, 14, 14, device=dev)
        forms = {f: measure.latency(resnets.convert_resnext(block, f).to(dev).eval(), xb) for f in resnets.FORMS}
        print("ResNeXt 32×4d block (256 channels, 14×14, batch 8): " +
              ", ".join(f"form ({f}) {1e3 * t:.2f} ms = {t / forms['c']:.1f}×" for f, t in forms.items()) + " of form (c)")


if __name__ == "__main__":
    main()
