# One line per target; logic lives in the Python CLIs.
PY      := .venv/bin/python
STAMP   := .venv/.installed
SHARED  ?= ../shared

.PHONY: setup setup-blas test test-slow demo demo-eval bench bench-step bench-attention bench-gemm bench-pipeline bench-scale models clean

setup: $(STAMP)

$(STAMP): setup.py
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -e ".[all]" --config-settings editable_mode=compat
	touch $(STAMP)

setup-blas: $(STAMP)
	$(PY) -m pip install -q -e ".[all,cpu-blas]" --config-settings editable_mode=compat

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

demo: $(STAMP)
	$(PY) -m spectralgpt_jax demo --data $(SHARED)/data/bigearthnet_s2_example --workdir runs/demo

# The tiny real-data sweep (configs/eval/tiny_sweep.py); runs `make demo` first if its
# checkpoint is missing. Prints the table and the plots' paths; rerunning skips finished points.
demo-eval: $(STAMP)
	@test -d runs/demo/run/checkpoints || $(MAKE) demo SHARED=$(SHARED)
	$(PY) -m spectralgpt_jax sweep --config configs/eval/tiny_sweep.py:shared=$(SHARED) --workdir runs/demo/eval

bench: bench-step bench-attention bench-gemm bench-pipeline bench-scale

bench-step: $(STAMP)
	$(PY) bench/step_bench.py --out BENCHMARKS.md

bench-attention: $(STAMP)
	$(PY) bench/attention_bench.py --out BENCHMARKS.md

bench-gemm: $(STAMP)
	$(PY) bench/gemm_bench.py --out BENCHMARKS.md

bench-pipeline: $(STAMP)
	$(PY) bench/pipeline_bench.py --out BENCHMARKS.md

bench-scale: $(STAMP)
	$(PY) bench/scale_bench.py --out BENCHMARKS.md

models: $(STAMP)
	$(PY) -m spectralgpt_jax models

clean:
	rm -rf .venv runs .pytest_cache
