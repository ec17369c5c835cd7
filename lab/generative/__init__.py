"""The generative family: a small support bot trained for real and served token by token.

catalogue (its world), tokenizer, model (a GRU language model trained at start),
generate (streaming answers with their timings), judge (answers against the catalogue).
"""
