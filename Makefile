# The two commands: `make run` (the service on 127.0.0.1:9001) and `make test` (the whole suite).
.PHONY: run test test-unit test-deploy export loadtest bench clean

run:          ## embedded CPU Triton + gateway on :9001 (CLIP_PRETRAINED=none offline)
	./scripts/run.sh

test:         ## every test: unit, integration on the real tritonserver, deploy validation
	./scripts/test.sh

test-unit:
	./scripts/test.sh tests/unit

test-deploy:
	./scripts/test.sh tests/deploy

export:       ## export CLIP_VERSIONS into model_repository/
	.venv/bin/clip-export

loadtest:     ## bounded locust run against a running gateway
	./scripts/loadtest.sh

bench:        ## side-by-side benchmark (writes docs/benchmarks.md)
	.venv/bin/clip-bench

clean:
	rm -rf model_repository/clip-* results .pytest_cache
