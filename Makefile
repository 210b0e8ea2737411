# The two set-up commands of the README.
.PHONY: demo test bench
demo:
	bash examples/quickstart.sh
test:
	bash scripts/test.sh
bench:
	bash bench/run.sh
