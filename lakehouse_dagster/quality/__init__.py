"""Data quality: declarative expectations with the warn / drop / fail semantics of Delta Live Tables."""
