"""How many threads torch computes with in the tests: one.

The tiny SDXL-shaped model's tensors are too small to be worth splitting across cores. Measured on
the 2-core machine (shared with other work), a 4-step 256x256 generation took 1.5-2.1 s with two
threads and 0.2-0.46 s with one; the VAE decode at 1024x1024 4.6-5.0 s against 2.4-2.8 s. A
second thread also competes with the gateway and simulator threads that the same test runs.
"""

TORCH_THREADS = 1
