"""spectralgpt-jax: SpectralGPT (Hong et al., TPAMI 2024) in JAX/Flax, built for accelerator scale."""

import setuptools

# Exact pins: the versions this project is tested with (see ../shared/STACK.md for how they were chosen).
CORE = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "grain==0.2.18",
    "tensorflow-datasets==4.9.10",
    "ml_collections==1.1.0",
    "absl-py==2.5.1",
    "numpy==2.4.6",
    "google-crc32c==1.9.0",
    "tensorboardX==2.6.5",
    "matplotlib==3.11.2",   # sweep plots (spectralgpt_jax/sweep/plots.py)
]
EXTRAS = {
    # The object-store servers the tests start on 127.0.0.1: a GCS JSON-API emulator and moto's S3.
    "test": ["pytest==9.2.0", "hypothesis==6.170.17", "scikit-learn==1.9.1",
             "gcp-storage-emulator==2026.7.19", "moto[server]==5.2.6"],
    # What spectralgpt_jax.torch needs (with numpy from the core): the PyTorch model and
    # from_pretrained, also used by export/import of .pth/.safetensors. torch==2.13.0 resolves to
    # the local CPU build on our machines; never leave it unpinned (an open range pulls a
    # multi-GB CUDA build).
    "torch": ["torch==2.13.0", "safetensors==0.8.0"],
    "geo": ["rasterio==1.4.4"],
    # The viewer for the run's logs (`tensorboard --logdir runs/demo/run`); the logs themselves
    # are written by tensorboardX (core). Resolves here to grpcio 1.85.3, Markdown 3.11.3,
    # Werkzeug 3.1.9 and tensorboard-data-server 0.7.2, with the core's protobuf.
    "tensorboard": ["tensorboard==2.21.0"],
    # gs:// and s3:// (any fsspec URL) for shards, run workdirs, evaluation outputs and weights.
    "cloud": ["gcsfs==2026.10.1", "s3fs==2026.9.0"],
    # Ingest as an Apache Beam pipeline (`ingest --runner beam`). Beam 2.77 caps protobuf below 7
    # and pyarrow below 26: pinned here to what it resolves to beside the core.
    "beam": ["apache-beam==2.77.0", "protobuf==6.33.6", "pyarrow==25.0.1"],
    # STAC catalogs, ItemCollections and items (`ingest --source stac`, `predict --input ITEM`).
    "stac": ["pystac==1.15.2"],
    # Intel MKL's sgemm for the float32 linear layers of one-device CPU runs (kernels/cpu_gemm.py).
    # Opt-in (not in "all"): faster than XLA's GEMMs on Intel Xeon, not on AMD EPYC
    # (BENCHMARKS.md); ~700 MB. Without it those layers use XLA's own GEMMs.
    "cpu-blas": [f"{p}; platform_machine == 'x86_64' and sys_platform == 'linux'"
                 for p in ("mkl==2026.2.0", "intel-openmp==2026.2.0", "tbb==2023.2.0",
                           "intel-cmplr-lib-ur==2026.2.0", "umf==1.2.0", "tcmlib==1.6.0")],
}
EXTRAS["all"] = sorted({p for name, ps in EXTRAS.items() if name != "cpu-blas" for p in ps})

# Ahead-of-time compilers for accelerators this machine does not have (spectralgpt_jax/compile/,
# `make setup-tpu` / `make setup-cuda12`, each its own venv). Never part of "all": libtpu and the
# CUDA wheels stay out of the default test venv (here, with test,torch,geo: .venv-tpu 2.6 GB in
# 66 s, .venv-cuda12 6.8 GB in 260 s). Exact pins of what
# `pip install "jax[tpu]==0.10.2"` / `"jax[cuda12]==0.10.2"` resolve to here (pip --dry-run --report).
EXTRAS["tpu"] = EXTRAS["cloud"] + [
    "libtpu==0.0.42.1",
    "requests==2.34.2", "charset_normalizer==3.5.3", "idna==3.20", "urllib3==2.8.0",
    "certifi==2026.10.19.post1",
]
EXTRAS["cuda12"] = EXTRAS["cloud"] + [
    "jax-cuda12-plugin[with-cuda]==0.10.2",
    "jax-cuda12-pjrt==0.10.2",
    "nvidia-cublas-cu12==12.9.3.13",
    "nvidia-cuda-cccl-cu12==12.9.27",
    "nvidia-cuda-cupti-cu12==12.9.79",
    "nvidia-cuda-nvcc-cu12==12.9.86",
    "nvidia-cuda-nvrtc-cu12==12.9.86",
    "nvidia-cuda-runtime-cu12==12.9.79",
    "nvidia-cudnn-cu12==9.28.0.42",
    "nvidia-cufft-cu12==11.4.1.4",
    "nvidia-cusolver-cu12==11.7.5.82",
    "nvidia-cusparse-cu12==12.5.10.65",
    "nvidia-nccl-cu12==2.32.3",
    "nvidia-nvjitlink-cu12==12.9.86",
    "nvidia-nvshmem-cu12==3.8.0",
]

setuptools.setup(
    name="spectralgpt-jax",
    version="0.1.0",
    description=__doc__,
    packages=setuptools.find_packages(include=["spectralgpt_jax*", "data_pipelines*", "configs*"]),
    # The CPU kernels (fused attention, BLAS GEMM) are compiled from source on first use.
    package_data={"spectralgpt_jax.kernels": ["*.cc", "*.h"],
                  "spectralgpt_jax.compile": ["gpu_targets/*.txtpb"]},
    python_requires=">=3.10",
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["spectralgpt-jax=spectralgpt_jax.__main__:main"]},
)
