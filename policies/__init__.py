"""Migration safety: the analyzer, its rules, and the Pulumi policy pack built from them."""
