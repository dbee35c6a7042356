"""The lake's tables in a data catalog (the Glue Data Catalog in production), so that Athena,
Redshift Spectrum and other engines can query them by name."""
