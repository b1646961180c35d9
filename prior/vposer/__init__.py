"""The VPoser pose prior: the model (`model`), its checkpoints (`checkpoint`), training
(`python -m prior.vposer.train`), the latent mixture fitted after training (`latent_mixture`),
the pose-space GMM (`gmm`) and samples (`python -m prior.vposer.sample`)."""
