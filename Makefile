# One line per target; logic lives in the Python CLIs.
PY      := .venv/bin/python
STAMP   := .venv/.installed
SHARED  ?= ../shared

.PHONY: setup setup-blas setup-tpu setup-cuda12 test test-slow demo demo-eval bench bench-quick bench-step bench-attention bench-gemm bench-pipeline bench-storage bench-predict bench-scale bench-features bench-aot test-aot models clean

setup: $(STAMP)

$(STAMP): setup.py
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -e ".[all]" --config-settings editable_mode=compat
	touch $(STAMP)

setup-blas: $(STAMP)
	$(PY) -m pip install -q -e ".[all,cpu-blas]" --config-settings editable_mode=compat

# Ahead-of-time compilers (libtpu / the CUDA plugin) in venvs of their own: never in .venv.
setup-tpu: .venv-tpu/.installed

.venv-tpu/.installed: setup.py
	python3 -m venv .venv-tpu
	.venv-tpu/bin/python -m pip install -q --upgrade pip==25.3
	.venv-tpu/bin/python -m pip install -q -e ".[test,torch,geo,tpu]" --config-settings editable_mode=compat
	touch $@

setup-cuda12: .venv-cuda12/.installed

.venv-cuda12/.installed: setup.py
	python3 -m venv .venv-cuda12
	.venv-cuda12/bin/python -m pip install -q --upgrade pip==25.3
	.venv-cuda12/bin/python -m pip install -q -e ".[test,torch,geo,cuda12]" --config-settings editable_mode=compat
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

demo: $(STAMP)
	$(PY) -m spectralgpt_jax demo --input $(SHARED)/data/bigearthnet_s2_example --workdir runs/demo

# The tiny real-data sweeps: configs/eval/tiny_sweep.py (EuroSAT-MS subset, demo encoder vs a
# random encoder and per-band statistics) and tiny_oscd_sweep.py (OSCD change detection, demo
# encoder vs random init); runs `make demo` first if its checkpoint or EuroSAT shards are
# missing. Prints one table per task and the plots' paths; reruns skip finished points.
demo-eval: $(STAMP)
	@test -d runs/demo/run/checkpoints -a -f runs/demo/eurosat_test/manifest.json || $(MAKE) demo SHARED=$(SHARED)
	$(PY) -m spectralgpt_jax sweep --config configs/eval/tiny_sweep.py:shared=$(SHARED) --workdir runs/demo/eval
	$(PY) -m spectralgpt_jax sweep --config configs/eval/tiny_oscd_sweep.py:shared=$(SHARED) --workdir runs/demo/eval_oscd

bench: bench-step bench-attention bench-gemm bench-pipeline bench-storage bench-predict bench-scale bench-features

# Every bench script in its --quick mode (tiny sizes, results to a temp file): proves they run.
bench-quick: $(STAMP)
	$(PY) -m pytest -q tests/bench

bench-step: $(STAMP)
	$(PY) bench/step_bench.py --out BENCHMARKS.md

bench-attention: $(STAMP)
	$(PY) bench/attention_bench.py --out BENCHMARKS.md

bench-gemm: $(STAMP)
	$(PY) bench/gemm_bench.py --out BENCHMARKS.md

bench-pipeline: $(STAMP)
	$(PY) bench/pipeline_bench.py --stores local,gcs,s3 --out BENCHMARKS.md

# Shard reads from local disk vs buckets on loopback GCS/S3 servers.
bench-storage: $(STAMP)
	$(PY) bench/storage_bench.py --out BENCHMARKS.md

bench-predict: $(STAMP)
	$(PY) bench/predict_bench.py --out BENCHMARKS.md

bench-features: $(STAMP)
	$(PY) bench/feature_bench.py --out BENCHMARKS.md

bench-scale: $(STAMP)
	$(PY) bench/scale_bench.py --out BENCHMARKS.md

# The slow compile tests need the compilers: run them from their venvs (they skip in .venv).
test-aot: .venv-tpu/.installed .venv-cuda12/.installed
	.venv-tpu/bin/python -m pytest -q -m slow tests/compile
	.venv-cuda12/bin/python -m pytest -q -m slow tests/compile

# One compile at a time (CPU-heavy), each in a child of the venv with its compiler.
bench-aot: .venv-tpu/.installed .venv-cuda12/.installed
	.venv-tpu/bin/python bench/aot_bench.py --targets v5e-8,h100 --per-device-batch 16 --out BENCHMARKS.md

models: $(STAMP)
	$(PY) -m spectralgpt_jax models

clean:
	rm -rf .venv .venv-tpu .venv-cuda12 runs .pytest_cache
