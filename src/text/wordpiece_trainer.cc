// Placeholder: filled in by the tokenizer work (issue 3).
