"""Benchmarks (`make bench`, never part of `make test`). Each prints one JSON line with its figures on stdout;
progress goes to stderr. See the README's "Performance" section for results and the machine they ran on."""
