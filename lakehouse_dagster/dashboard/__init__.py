"""The BI dashboard over the warehouse (``make dashboard``): a Streamlit app, and its queries."""
