"""`python -m cli.chaos` (what `make chaos` runs)."""

from .command import chaos

if __name__ == "__main__":
    chaos.main(prog_name="python -m cli.chaos")
