"""Performance targets of chaostoolkit-mesh, measured side by side with references.

Run with ``make bench`` (``python -m benchmarks``).
"""
