# Practice mode targets, included by the top-level Makefile (`-include mk/*.mk`). See docs/practice.md.

.PHONY: mystery exercises

mystery: $(VENV_STAMP) ## practise triage: a hidden scenario runs live (ARGS='--seed 7' gives a class one case)
	@$(LAB) triage start $(ARGS)

exercises: $(VENV_STAMP) ## redraw the interpretation drills in docs/exercises/ from real runs (~1 min, no stack)
	@$(PY) -m lab.practice.exercises --out docs/exercises
