"""Operating the lakehouse: the metrics of each materialisation, and alerts on failures."""
