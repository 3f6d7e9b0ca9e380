"""The paper's sections, each a function from the records (and what was derived from them) to Markdown lines."""
