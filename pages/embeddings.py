"""embeddings page."""
import streamlit as st

st.title("Embeddings")
st.warning("This page is being built.")
