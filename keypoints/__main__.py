"""`python -m keypoints INPUT --out DIR`: see keypoints/cli.py."""

import sys

from keypoints.cli import main

sys.exit(main())
