"""A stand-in for a foreign training framework (like mmengine) so that test
checkpoints pickle objects of classes the loader has never heard of."""
