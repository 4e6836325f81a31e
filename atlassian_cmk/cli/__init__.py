"""cmkctl: the command-line adapter. Parsing and printing only; the rules live in the core modules."""
