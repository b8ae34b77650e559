"""Performance targets of chaostoolkit-mesh, measured side by side with references (``make bench``)."""
