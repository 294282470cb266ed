"""One rich console for every benchmark module, so progress bars and point lines do not interleave."""

from rich.console import Console

console = Console()
