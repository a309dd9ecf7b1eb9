"""The self-hosted SDXL-Lightning backend: diffusers on this machine's GPU (or CPU).

Importing this package (or ``backends.local.config``) imports neither torch nor diffusers, so the
gateway starts fast without the ``local`` extra; the heavy imports happen when a pipeline loads.

    config.py          LocalBackendConfig: weights, device, speed levers, batching limits
    checkpoints.py     which Lightning checkpoint serves which step count; the model directory layout
    loader.py          SDXL base components and Lightning UNets, from the hub or a directory
    speed.py           GPU speed levers (SDPA, channels_last, fused QKV, torch.compile)
    compiled.py        ShapeCompiled: torch.compile for the warmed shapes, eager for the rest
    vae.py             VaeCodec: latents to RGB bytes and the init image to latents, at one dtype
    schedule.py        image-to-image strength on the distilled timesteps
    seeds.py           the seed of each image of a request
    pipeline.py        LightningPipeline: text-to-image and image-to-image, one UNet per step count
    encoding.py        RGB bytes and PIL images to PNG/JPEG/WebP, and the init image back
    batching.py        DynamicBatcher: merges compatible requests into one pipeline call, splits failures
    health.py          FailureStreak: consecutive pipeline failures against readiness and liveness
    engine.py          LocalEngine: load, warm up, batch, generate, on one GPU thread
    inprocess.py       LocalPipelineBackend: the engine behind the ``Backend`` protocol
    worker_app.py      the GPU worker HTTP service (Litestar) and ``serve_worker``
    worker_requests.py each call's token, deadline header and disconnect
    worker_metrics.py  the worker's Prometheus metrics
    worker_cli.py      ``main_worker(argv)``: the worker's command line
    random_model.py    SDXL-shaped model directories with random weights, full size or tiny
    tiny.py            a tiny SDXL-shaped model for offline tests and benchmarks
"""
