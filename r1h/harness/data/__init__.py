"""Where benchmark rows come from and how their columns are checked: sources, readers, typed columns, the hub."""
