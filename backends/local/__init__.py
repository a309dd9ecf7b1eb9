"""The self-hosted SDXL-Lightning backend: diffusers on this machine's GPU (or CPU).

Importing this package (or ``backends.local.config``) imports neither torch nor diffusers, so the
gateway starts fast without the ``local`` extra; the heavy imports happen when a pipeline loads.

    config.py          LocalBackendConfig: weights, device, speed levers, batching limits
    checkpoints.py     which Lightning checkpoint serves which step count; the model directory layout
    loader.py          SDXL base components and Lightning UNets, from the hub or a directory
    speed.py           GPU speed levers (SDPA, channels_last, fused QKV, torch.compile)
    pipeline.py        LightningPipeline: text-to-image and image-to-image, one UNet per step count
    encoding.py        PIL images to PNG/JPEG/WebP bytes, and the init image back
    batching.py        DynamicBatcher: merges compatible requests into one pipeline call
    engine.py          LocalEngine: load, warm up, batch, generate
    inprocess.py       LocalPipelineBackend: the engine behind the ``Backend`` protocol
    worker_app.py      the GPU worker HTTP service (Litestar) and ``serve_worker``
    worker_metrics.py  the worker's Prometheus metrics
    worker_cli.py      ``main_worker(argv)``: the worker's command line
    tiny.py            a tiny SDXL-shaped model for offline tests and benchmarks
"""
