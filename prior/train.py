"""`python -m prior.train [--config F] [key=value ...]`: train a VPoser prior, the design card's
command; the training is `prior.vposer.train` (same arguments)."""

from prior.vposer.train import main

if __name__ == "__main__":
    main()
