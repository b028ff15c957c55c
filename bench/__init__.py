"""LeadScore benchmarks (see bench/README.md)."""
