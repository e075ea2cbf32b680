"""`python -m modelaudit`: the same command line as `modelaudit`."""

from modelaudit.cli import main

main()
