"""Training the project's own small models of the synthetic world (encoder, aesthetics head)."""
