"""Built-in energy sources: perf, RAPL sysfs, NVML, Kepler and the estimate fallback."""
