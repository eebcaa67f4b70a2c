"""Streamlit review app for listeners and the owner."""
