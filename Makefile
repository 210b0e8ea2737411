# The two set-up commands of the README.
.PHONY: demo test bench
demo:
	bash examples/quickstart.sh
test:
	bash scripts/test.sh
bench:
	python3 bench/run.py --full
