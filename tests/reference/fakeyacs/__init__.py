"""A stand-in for a foreign config package (like yacs) so that test
checkpoints pickle an object of a class the loader has never heard of."""
