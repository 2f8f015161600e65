"""Training: batches of histories, losses, the trainer loop with checkpoints, and run folders."""
