"""Reports built only from the results store: summary statistics, tables and their renderers."""
