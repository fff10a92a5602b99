// Placeholder: filled in by the model work (issue 4).
