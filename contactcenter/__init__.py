"""contactcenter: the host — settings, app assembly, CLI, ports and their adapters."""
