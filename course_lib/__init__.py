"""course_lib: the tested library behind the course *Efficient CNNs, from the weight matrix up*.

One module per chapter (``conv``, ``quant``, ``lowrank``, ...) plus a small shared core:

- ``config``   profiles (quick / full), device choice, seeding, paths
- ``data``     datasets through torchvision and a device-resident loader
- ``models``   the small reference networks the chapters train and compress
- ``train``    ``fit`` / ``evaluate`` with checkpoints that resume exactly
- ``measure``  parameters, MACs, bytes, latency, activation memory
- ``widgets``  the explorer pattern every interactive figure follows
- ``checks``   helpers for exercise checkers
"""

__version__ = "0.1.0"
